// JSON text appended straight to a string, for responses written field by field: no value tree
// and no allocation beyond the output's own growth. Strings are escaped as Boost.JSON's
// serializer escapes them, so the bytes equal json::serialize of the same document.
#pragma once

#include <charconv>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>

namespace portal_auth {

class json_writer {
public:
    explicit json_writer(std::string& out) noexcept : out_(out) {}

    json_writer& begin_object();
    json_writer& end_object();
    json_writer& begin_array();
    json_writer& end_array();

    // The member name, written as given: it must not need escaping (the API's names never do).
    // The next call writes its value.
    json_writer& key(std::string_view name);

    json_writer& value(std::string_view text);
    json_writer& value(const char* text) { return value(std::string_view(text)); }
    json_writer& value(bool flag);
    template <std::integral T>
    requires(!std::same_as<T, bool>) json_writer& value(T number) {
        char digits[24];
        const char* end = std::to_chars(digits, digits + sizeof digits, number).ptr;
        return raw(std::string_view(digits, static_cast<std::size_t>(end - digits)));
    }
    template <class T> json_writer& value(const std::optional<T>& maybe) {
        return maybe ? value(*maybe) : null();
    }
    json_writer& null();

    // A value already serialized as JSON (by Boost.JSON, say), inserted as it is.
    json_writer& raw(std::string_view json_text);

private:
    void separate();
    json_writer& open(char bracket);
    json_writer& close(char bracket);

    std::string& out_;
    bool need_comma_ = false;
};

// `text` as a JSON string literal, quotes included, appended to `out`.
void append_json_string(std::string& out, std::string_view text);

} // namespace portal_auth
