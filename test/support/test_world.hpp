// The test world shared by the tests and the fuzz targets (no Boost.Test here, so libFuzzer
// executables can link it too).
//  teams: 1 Acme Corp, 2 Globex, 3 Portal Operations; password of each: "<first>-pw"
//  100 alice owner(10, Acme)     101 bob admin(11, Acme) + member(21, Globex)
//  102 carol member(12, Acme)    103 dave owner(20, Globex)
//  104 erin admin(22, Globex)    105 frank member(23, Globex)
//  106 gina owner(13, Acme)      900 olga operator, owner(30, Ops) + member(14, Acme)
#pragma once

#include <portal_auth/password_hash.hpp>

#include <string>

namespace portal_auth::test {

// The directory JSON, with real scrypt hashes at the given (cheap) cost.
std::string make_test_directory_json(scrypt_params cost);

} // namespace portal_auth::test
