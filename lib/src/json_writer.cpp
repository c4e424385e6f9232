#include "json_writer.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

namespace portal_auth {

namespace {

bool needs_escape(unsigned char ch) {
    return ch < 0x20 || ch == '"' || ch == '\\';
}

// Whether any of the 8 bytes in `word` needs escaping (the classic "has a byte below n" and
// "has a zero byte" tests): names, e-mails and tokens are long runs of plain characters.
bool block_needs_escape(std::uint64_t word) {
    constexpr std::uint64_t ones = 0x0101010101010101u;
    constexpr std::uint64_t highs = 0x8080808080808080u;
    const auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
    const std::uint64_t below_space = (word - ones * 0x20) & ~word & highs;
    return (below_space | has_zero(word ^ (ones * '"')) | has_zero(word ^ (ones * '\\'))) != 0;
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    const char* const data = text.data();
    const std::size_t size = text.size();
    std::size_t plain_from = 0;
    std::size_t i = 0;
    while (i < size) {
        if (i + 8 <= size) {
            std::uint64_t word;
            std::memcpy(&word, data + i, sizeof word);
            if (!block_needs_escape(word)) {
                i += 8;
                continue;
            }
        }
        const auto ch = static_cast<unsigned char>(data[i]);
        if (!needs_escape(ch)) {
            ++i;
            continue;
        }
        out.append(data + plain_from, i - plain_from);
        plain_from = ++i;
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
    out.append(data + plain_from, size - plain_from);
    out.push_back('"');
}

void json_writer::separate() {
    if (need_comma_)
        out_.push_back(',');
}

json_writer& json_writer::open(char bracket) {
    separate();
    out_.push_back(bracket);
    need_comma_ = false;
    return *this;
}

json_writer& json_writer::close(char bracket) {
    out_.push_back(bracket);
    need_comma_ = true;
    return *this;
}

json_writer& json_writer::begin_object() {
    return open('{');
}

json_writer& json_writer::end_object() {
    return close('}');
}

json_writer& json_writer::begin_array() {
    return open('[');
}

json_writer& json_writer::end_array() {
    return close(']');
}

json_writer& json_writer::key(std::string_view name) {
    separate();
    // Member names are the API's own identifiers: plain text, copied without an escape scan.
    assert(std::none_of(name.begin(), name.end(),
                        [](char c) { return needs_escape(static_cast<unsigned char>(c)); }));
    out_.push_back('"');
    out_.append(name);
    out_.append("\":", 2);
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

} // namespace portal_auth
