// Raw binary values: key material, salts, decoded base64.
#pragma once

#include <vector>

namespace portal_auth {

using bytes = std::vector<unsigned char>;

} // namespace portal_auth
