// Strict JSON for request bodies (RFC 7493, I-JSON): a member name may appear only once per
// object. Boost.JSON keeps the last of repeated names, so a body like
// {"email":"nobody@x","email":"alice@acme.test"} would mean whatever the last one says.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace portal_auth {

// The first member name that repeats within one object of `text`, or nothing. Text that is not
// valid JSON has no duplicate by this test (the parser reports it on its own).
std::optional<std::string> first_duplicate_member(std::string_view text);

} // namespace portal_auth
