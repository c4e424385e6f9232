#include <portal_auth/directory.hpp>
#include <portal_auth/error.hpp>

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>

namespace portal_auth {

std::string_view to_string(role r) noexcept {
    switch (r) {
    case role::owner:
        return "owner";
    case role::admin:
        return "admin";
    case role::member:
        return "member";
    }
    return "member";
}

std::optional<role> parse_role(std::string_view text) noexcept {
    if (text == "owner")
        return role::owner;
    if (text == "admin")
        return role::admin;
    if (text == "member")
        return role::member;
    return std::nullopt;
}

std::string_view display_name(role r) noexcept {
    switch (r) {
    case role::owner:
        return "Owner";
    case role::admin:
        return "Admin";
    case role::member:
        return "Member";
    }
    return "Member";
}

namespace {

namespace json = boost::json;

std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// User-supplied strings are quoted with JSON escaping so the detail stays on one line.
std::string quoted(std::string_view text) {
    return json::serialize(json::string_view(text));
}

std::string element_path(std::string_view array_name, std::size_t index) {
    std::string path(array_name);
    path += '[';
    path += std::to_string(index);
    path += ']';
    return path;
}

// Thrown only inside parse() to unwind from deep validation code with the detail message.
struct validation_failure {
    std::string detail;
};

[[noreturn]] void fail(std::string detail) {
    throw validation_failure{std::move(detail)};
}

[[noreturn]] void fail(std::string_view path, std::string_view message) {
    std::string detail(path);
    detail += ": ";
    detail += message;
    fail(std::move(detail));
}

std::string field_path(std::string_view object_path, std::string_view key) {
    std::string path(object_path);
    path += '.';
    path += key;
    return path;
}

const json::value& required(const json::object& obj, std::string_view object_path,
                            std::string_view key) {
    const json::value* v = obj.if_contains(key);
    if (v == nullptr)
        fail(field_path(object_path, key), "missing");
    return *v;
}

// Only JSON integers count: 1.0 and 1e2 are doubles in Boost.JSON and are rejected.
std::int64_t positive_id(const json::object& obj, std::string_view object_path,
                         std::string_view key) {
    const json::value& v = required(obj, object_path, key);
    std::int64_t id = 0;
    if (v.is_int64()) {
        id = v.get_int64();
    } else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(
                                                      std::numeric_limits<std::int64_t>::max())) {
        id = static_cast<std::int64_t>(v.get_uint64());
    } else {
        fail(field_path(object_path, key), "expected a positive integer");
    }
    if (id <= 0)
        fail(field_path(object_path, key), "expected a positive integer");
    return id;
}

std::string_view non_empty_string(const json::object& obj, std::string_view object_path,
                                  std::string_view key) {
    const json::value& v = required(obj, object_path, key);
    if (!v.is_string() || v.get_string().empty())
        fail(field_path(object_path, key), "expected a non-empty string");
    return v.get_string();
}

bool optional_bool(const json::object& obj, std::string_view object_path, std::string_view key,
                   bool fallback) {
    const json::value* v = obj.if_contains(key);
    if (v == nullptr)
        return fallback;
    if (!v->is_bool())
        fail(field_path(object_path, key), "expected a boolean");
    return v->get_bool();
}

const json::array& required_array(const json::object& root, std::string_view key) {
    const json::value* v = root.if_contains(key);
    if (v == nullptr)
        fail(key, "missing");
    if (!v->is_array())
        fail(key, "expected an array");
    return v->get_array();
}

const json::object& element_object(const json::value& v, const std::string& path) {
    if (!v.is_object())
        fail(path, "expected an object");
    return v.get_object();
}

std::string syntax_error(std::string_view text, std::size_t offset, std::string_view message) {
    offset = std::min(offset, text.size());
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    }
    std::string detail = "JSON syntax error at line ";
    detail += std::to_string(line);
    detail += ", column ";
    detail += std::to_string(offset - line_start + 1);
    detail += ": ";
    detail += message;
    return detail;
}

json::value parse_json(std::string_view text) {
    json::parser parser;
    boost::system::error_code ec;
    // write_some stops after one complete value and reports where it stopped, which is also
    // where an error was detected.
    std::size_t consumed = parser.write_some(text.data(), text.size(), ec);
    if (ec)
        fail(syntax_error(text, consumed, ec.message()));
    if (consumed < text.size())
        fail(syntax_error(text, consumed, "unexpected data after the top-level value"));
    return parser.release();
}

} // namespace

directory::directory(const directory& other)
    : customers_(other.customers_), teams_(other.teams_), profiles_(other.profiles_),
      customer_index_(other.customer_index_), email_index_(other.email_index_),
      team_index_(other.team_index_), profile_index_(other.profile_index_),
      impersonation_enabled_(other.impersonation_enabled_),
      impersonation_reason_required_(other.impersonation_reason_required_),
      operator_impersonations_visible_(other.operator_impersonations_visible_) {
    link_profiles();
}

directory& directory::operator=(const directory& other) {
    if (this != &other) {
        directory copy(other);
        *this = std::move(copy);
    }
    return *this;
}

void directory::link_profiles() {
    by_customer_.clear();
    by_team_.clear();
    for (const profile& p : profiles_) {
        by_customer_[p.customer].push_back(&p);
        by_team_[p.team].push_back(&p);
    }
    auto by_id = [](const profile* a, const profile* b) { return a->id < b->id; };
    for (auto& [id, list] : by_customer_)
        std::sort(list.begin(), list.end(), by_id);
    for (auto& [id, list] : by_team_)
        std::sort(list.begin(), list.end(), by_id);
}

boost::system::result<directory> directory::parse(std::string_view json_text,
                                                  std::string& error_detail) {
    directory dir;
    try {
        const json::value root_value = parse_json(json_text);
        if (!root_value.is_object())
            fail("(root): expected an object");
        const json::object& root = root_value.get_object();

        const json::array& customers = required_array(root, "customers");
        const json::array& teams = required_array(root, "teams");
        const json::array& profiles = required_array(root, "profiles");
        const auto read_flag = [&](std::string_view name, bool& into) {
            if (const json::value* flag = root.if_contains(name)) {
                if (!flag->is_bool())
                    fail(name, "expected a boolean");
                into = flag->get_bool();
            }
        };
        read_flag("impersonationEnabled", dir.impersonation_enabled_);
        read_flag("impersonationReasonRequired", dir.impersonation_reason_required_);
        read_flag("operatorImpersonationsVisible", dir.operator_impersonations_visible_);

        dir.customers_.reserve(customers.size());
        for (std::size_t i = 0; i < customers.size(); ++i) {
            const std::string path = element_path("customers", i);
            const json::object& obj = element_object(customers[i], path);
            customer c;
            c.id = positive_id(obj, path, "id");
            if (dir.customer_index_.contains(c.id))
                fail(field_path(path, "id"), "duplicate value " + std::to_string(c.id));

            const json::value& email = required(obj, path, "email");
            if (!email.is_string() || email.get_string().empty() ||
                email.get_string().find('@') == json::string::npos) {
                fail(field_path(path, "email"), "expected a non-empty string containing '@'");
            }
            c.email = email.get_string();
            std::string email_key = ascii_lower(c.email);
            if (dir.email_index_.contains(email_key))
                fail(field_path(path, "email"), "duplicate value " + quoted(c.email));

            c.name = non_empty_string(obj, path, "name");

            // The hash itself never appears in a message.
            const json::value& hash = required(obj, path, "passwordHash");
            if (!hash.is_string())
                fail(field_path(path, "passwordHash"), "expected a string");
            auto parsed = parse_password_hash(hash.get_string());
            if (!parsed)
                fail(field_path(path, "passwordHash"), "not a valid scrypt password hash");
            if (scrypt_memory_bytes(parsed->params) > max_scrypt_memory_bytes)
                fail(field_path(path, "passwordHash"),
                     "scrypt ln=" + std::to_string(parsed->params.log2_n) +
                         ",r=" + std::to_string(parsed->params.r) + " needs " +
                         std::to_string(scrypt_memory_bytes(parsed->params) >> 20) +
                         " MiB per verification; at most " +
                         std::to_string(max_scrypt_memory_bytes >> 20) + " MiB is accepted");
            c.password = std::move(*parsed);

            c.is_operator = optional_bool(obj, path, "operator", false);

            dir.customer_index_.emplace(c.id, dir.customers_.size());
            dir.email_index_.emplace(std::move(email_key), dir.customers_.size());
            dir.customers_.push_back(std::move(c));
        }

        dir.teams_.reserve(teams.size());
        for (std::size_t i = 0; i < teams.size(); ++i) {
            const std::string path = element_path("teams", i);
            const json::object& obj = element_object(teams[i], path);
            team t;
            t.id = positive_id(obj, path, "id");
            if (dir.team_index_.contains(t.id))
                fail(field_path(path, "id"), "duplicate value " + std::to_string(t.id));
            t.name = non_empty_string(obj, path, "name");
            dir.team_index_.emplace(t.id, dir.teams_.size());
            dir.teams_.push_back(std::move(t));
        }

        // (customer, team) -> index of the profile already seen for that pair.
        std::unordered_map<customer_id, std::unordered_map<team_id, std::size_t>> memberships;
        dir.profiles_.reserve(profiles.size());
        for (std::size_t i = 0; i < profiles.size(); ++i) {
            const std::string path = element_path("profiles", i);
            const json::object& obj = element_object(profiles[i], path);
            profile p;
            p.id = positive_id(obj, path, "id");
            if (dir.profile_index_.contains(p.id))
                fail(field_path(path, "id"), "duplicate value " + std::to_string(p.id));
            p.customer = positive_id(obj, path, "customerId");
            if (!dir.customer_index_.contains(p.customer))
                fail(field_path(path, "customerId"),
                     "unknown customer " + std::to_string(p.customer));
            p.team = positive_id(obj, path, "teamId");
            if (!dir.team_index_.contains(p.team))
                fail(field_path(path, "teamId"), "unknown team " + std::to_string(p.team));

            const json::value& role_value = required(obj, path, "role");
            if (!role_value.is_string())
                fail(field_path(path, "role"), "expected one of \"owner\", \"admin\", \"member\"");
            auto r = parse_role(role_value.get_string());
            if (!r)
                fail(field_path(path, "role"), "unknown role " + quoted(role_value.get_string()) +
                                                   " (expected owner, admin or member)");
            p.role_in_team = *r;

            auto [it, inserted] = memberships[p.customer].emplace(p.team, i);
            if (!inserted)
                fail(field_path(path, "teamId"), "customer " + std::to_string(p.customer) +
                                                     " already has a profile in team " +
                                                     std::to_string(p.team) + " (" +
                                                     element_path("profiles", it->second) + ")");

            dir.profile_index_.emplace(p.id, dir.profiles_.size());
            dir.profiles_.push_back(p);
        }

        for (std::size_t i = 0; i < dir.customers_.size(); ++i) {
            if (!memberships.contains(dir.customers_[i].id))
                fail(element_path("customers", i), "has no profile");
        }
    } catch (const validation_failure& failure) {
        error_detail = failure.detail;
        return errc::invalid_directory;
    }

    dir.link_profiles();
    return dir;
}

const customer* directory::find_customer(customer_id id) const noexcept {
    auto it = customer_index_.find(id);
    return it == customer_index_.end() ? nullptr : &customers_[it->second];
}

const customer* directory::find_customer_by_email(std::string_view email) const {
    auto it = email_index_.find(ascii_lower(email));
    return it == email_index_.end() ? nullptr : &customers_[it->second];
}

const team* directory::find_team(team_id id) const noexcept {
    auto it = team_index_.find(id);
    return it == team_index_.end() ? nullptr : &teams_[it->second];
}

const profile* directory::find_profile(profile_id id) const noexcept {
    auto it = profile_index_.find(id);
    return it == profile_index_.end() ? nullptr : &profiles_[it->second];
}

std::span<const profile* const> directory::profiles_of_customer(customer_id id) const noexcept {
    auto it = by_customer_.find(id);
    if (it == by_customer_.end())
        return {};
    return it->second;
}

std::span<const profile* const> directory::profiles_in_team(team_id id) const noexcept {
    auto it = by_team_.find(id);
    if (it == by_team_.end())
        return {};
    return it->second;
}

} // namespace portal_auth
