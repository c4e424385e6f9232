#include "response_serializer.hpp"

namespace portal_auth {

void serialize_response(const http_response& response, std::string& out) {
    const unsigned version = response.version();
    const unsigned code = response.result_int();
    // "HTTP/X.Y ### ", digits filled in as Beast's fields writer does it.
    char status_line[] = "HTTP/1.1 200 ";
    status_line[5] = static_cast<char>('0' + version / 10);
    status_line[7] = static_cast<char>('0' + version % 10);
    status_line[9] = static_cast<char>('0' + code / 100);
    status_line[10] = static_cast<char>('0' + (code / 10) % 10);
    status_line[11] = static_cast<char>('0' + code % 10);
    out.append(status_line, sizeof status_line - 1);
    const auto reason = response.reason();
    out.append(reason.data(), reason.size());
    out.append("\r\n");
    for (const auto& field : response.base()) {
        out.append(field.name_string());
        out.append(": ");
        out.append(field.value());
        out.append("\r\n");
    }
    out.append("\r\n");
    out.append(response.body());
}

} // namespace portal_auth
