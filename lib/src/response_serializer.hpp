// HTTP/1.x responses to wire bytes in one contiguous buffer, so that the listener hands TLS a
// single write instead of Beast's scatter list of status line, fields and body.
#pragma once

#include <portal_auth/http_types.hpp>

#include <string>

namespace portal_auth {

// Appends `response` to `out`: the status line, the fields in their order, a blank line and the
// body; byte for byte what Beast's serializer writes for the same message (call
// prepare_payload() first, as for Beast). `out` keeps its capacity across calls when the caller
// clears it, so a connection serializes every response into one reused buffer.
void serialize_response(const http_response& response, std::string& out);

} // namespace portal_auth
