#include <portal_auth/json_writer.hpp>

#include <charconv>

namespace portal_auth {

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t plain_from = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto ch = static_cast<unsigned char>(text[i]);
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        out.append(text.data() + plain_from, i - plain_from);
        plain_from = i + 1;
        out.push_back('\\');
        switch (ch) {
        case '"':
            out.push_back('"');
            break;
        case '\\':
            out.push_back('\\');
            break;
        case '\b':
            out.push_back('b');
            break;
        case '\f':
            out.push_back('f');
            break;
        case '\n':
            out.push_back('n');
            break;
        case '\r':
            out.push_back('r');
            break;
        case '\t':
            out.push_back('t');
            break;
        default:
            out.append("u00");
            out.push_back(hex[ch >> 4]);
            out.push_back(hex[ch & 15]);
        }
    }
    out.append(text.data() + plain_from, text.size() - plain_from);
    out.push_back('"');
}

void json_writer::separate() {
    if (need_comma_)
        out_.push_back(',');
}

json_writer& json_writer::begin_object() {
    separate();
    out_.push_back('{');
    need_comma_ = false;
    return *this;
}

json_writer& json_writer::end_object() {
    out_.push_back('}');
    need_comma_ = true;
    return *this;
}

json_writer& json_writer::begin_array() {
    separate();
    out_.push_back('[');
    need_comma_ = false;
    return *this;
}

json_writer& json_writer::end_array() {
    out_.push_back(']');
    need_comma_ = true;
    return *this;
}

json_writer& json_writer::key(std::string_view name) {
    separate();
    append_json_string(out_, name);
    out_.push_back(':');
    need_comma_ = false;
    return *this;
}

json_writer& json_writer::value(std::string_view text) {
    separate();
    append_json_string(out_, text);
    need_comma_ = true;
    return *this;
}

json_writer& json_writer::value(bool flag) {
    return raw(flag ? "true" : "false");
}

json_writer& json_writer::null() {
    return raw("null");
}

json_writer& json_writer::raw(std::string_view json_text) {
    separate();
    out_.append(json_text);
    need_comma_ = true;
    return *this;
}

json_writer& json_writer::signed_value(std::int64_t number) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, number).ptr;
    return raw(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

json_writer& json_writer::unsigned_value(std::uint64_t number) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, number).ptr;
    return raw(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

} // namespace portal_auth
