// The customer/team directory: read-only after load, shared between threads without locks.
#pragma once

#include <portal_auth/password_hash.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portal_auth {

using customer_id = std::int64_t;
using team_id = std::int64_t;
using profile_id = std::int64_t;

enum class role { owner, admin, member };

// "owner" / "admin" / "member" (as in the directory file).
std::string_view to_string(role r) noexcept;
std::optional<role> parse_role(std::string_view text) noexcept;
// "Owner" / "Admin" / "Member" (as in the profiles listing).
std::string_view display_name(role r) noexcept;

struct customer {
    customer_id id = 0;
    std::string email;
    std::string name;
    password_hash password;
    bool is_operator = false;
};

struct team {
    team_id id = 0;
    std::string name;
};

struct profile {
    profile_id id = 0;
    customer_id customer = 0;
    team_id team = 0;
    role role_in_team = role::member;
};

class directory {
public:
    // by_customer_ / by_team_ point into profiles_. Moves keep those pointers valid (a moved
    // vector keeps its buffer); copies rebuild them so they point into the copy.
    directory() = default;
    directory(const directory& other);
    directory& operator=(const directory& other);
    directory(directory&&) noexcept = default;
    directory& operator=(directory&&) noexcept = default;
    ~directory() = default;

    // Parses and validates the directory JSON. On failure returns errc::invalid_directory and
    // sets error_detail to a one-line message naming the field, e.g.
    // "customers[2].email: duplicate value \"a@b.test\"" or "profiles[0].teamId: unknown team 7".
    // Rules: ids are positive integers, unique per kind; emails unique (case-insensitive) and
    // non-empty; passwordHash parses; references resolve; role is owner/admin/member; a customer
    // has one or more profiles, at most one per team. Optional top-level
    // "impersonationEnabled" (bool, default true),
    // "impersonationReasonRequired" (bool, default false: a reason is optional),
    // "operatorImpersonationsVisible" (bool, default true: customers see operators' impersonations
    // of them).
    static boost::system::result<directory> parse(std::string_view json_text,
                                                  std::string& error_detail);

    const customer* find_customer(customer_id id) const noexcept;
    const customer* find_customer_by_email(std::string_view email) const; // case-insensitive
    const team* find_team(team_id id) const noexcept;
    const profile* find_profile(profile_id id) const noexcept;

    // Sorted by profile id.
    std::span<const profile* const> profiles_of_customer(customer_id id) const noexcept;
    std::span<const profile* const> profiles_in_team(team_id id) const noexcept;

    bool impersonation_enabled() const noexcept { return impersonation_enabled_; }
    bool impersonation_reason_required() const noexcept { return impersonation_reason_required_; }
    bool operator_impersonations_visible() const noexcept {
        return operator_impersonations_visible_;
    }

    std::size_t customer_count() const noexcept { return customers_.size(); }
    std::span<const customer> customers() const noexcept { return customers_; }
    std::size_t profile_count() const noexcept { return profiles_.size(); }

private:
    void link_profiles();

    std::vector<customer> customers_;
    std::vector<team> teams_;
    std::vector<profile> profiles_;
    std::unordered_map<customer_id, std::size_t> customer_index_;
    std::unordered_map<std::string, std::size_t> email_index_; // lower-cased email
    std::unordered_map<team_id, std::size_t> team_index_;
    std::unordered_map<profile_id, std::size_t> profile_index_;
    std::unordered_map<customer_id, std::vector<const profile*>> by_customer_;
    std::unordered_map<team_id, std::vector<const profile*>> by_team_;
    bool impersonation_enabled_ = true;
    bool impersonation_reason_required_ = false;
    bool operator_impersonations_visible_ = true;
};

} // namespace portal_auth
