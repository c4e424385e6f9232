// Flags, environment and config file through Boost.Program_options. Every option is read as text
// (a list of the texts given, of which a single-valued option takes the last) and validated here,
// so that each error is one line naming the flag, variable or file line that gave the value.
#include "options.hpp"

#include <portal_auth/cors.hpp>
#include <portal_auth/ip_network.hpp>
#include <portal_auth/password_verifier.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/program_options/errors.hpp>
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <boost/program_options/variables_map.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace portal_auth::app {
namespace {

namespace po = boost::program_options;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::string_view env_prefix = "PORTAL_AUTH_";

std::uint64_t parse_number(std::string_view flag, std::string_view text, std::uint64_t min,
                           std::uint64_t max) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
        value > max)
        throw usage_error{std::string(flag) + ": expected a whole number from " +
                          std::to_string(min) + " to " + std::to_string(max) + ", got \"" +
                          std::string(text) + "\""};
    return value;
}

std::chrono::seconds parse_seconds(std::string_view flag, std::string_view text) {
    constexpr std::uint64_t one_year = 366ull * 24 * 3600;
    return std::chrono::seconds(parse_number(flag, text, 1, one_year));
}

// A switch's value from the environment or the file ("proxy-protocol = true"); a flag on the
// command line is "true".
bool parse_switch(std::string_view flag, std::string_view text) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "true" || lower == "yes" || lower == "on" || lower == "1")
        return true;
    if (lower == "false" || lower == "no" || lower == "off" || lower == "0")
        return false;
    throw usage_error{std::string(flag) + ": expected true or false, got \"" + std::string(text) +
                      "\""};
}

tcp::endpoint parse_listen(std::string_view flag, std::string_view text) {
    auto fail = [&](std::string_view why) {
        return usage_error{std::string(flag) + ": " + std::string(why) + " in \"" +
                           std::string(text) + "\" (expected HOST:PORT or [IPv6]:PORT)"};
    };
    std::string_view host, port;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string_view::npos)
            throw fail("missing \"]:PORT\"");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            throw fail("missing \":PORT\"");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (host == "localhost")
        host = "127.0.0.1";
    boost::system::error_code ec;
    auto address = asio::ip::make_address(std::string(host), ec);
    if (ec)
        throw fail("HOST must be an IP address or localhost");
    auto port_number = parse_number(std::string(flag) + " port", port, 0, 65535);
    return {address, static_cast<unsigned short>(port_number)};
}

// One option: its name (the flag without "--", the variable after PORTAL_AUTH_ in upper case
// with '_' for '-', the key in the file), how it takes values, its help, and what a value does.
// `flag` in apply is how the value was given, for messages: "--session-ttl",
// "PORTAL_AUTH_SESSION_TTL" or "FILE: session-ttl".
enum class arity { single, repeatable, switch_ };
using apply_fn = void (*)(options&, const std::string& flag, const std::string& value);

struct option_spec {
    std::string_view name;
    std::string_view value_name; // empty for a switch
    arity takes;
    std::string_view help;
    apply_fn apply;
};

void set_login_window(options& o, const std::string& flag, const std::string& value) {
    const auto window = parse_seconds(flag, value);
    o.service.login_failures_per_email_and_address.window = window;
    o.service.login_failures_per_email.window = window;
    o.service.login_failures_per_address.window = window;
}

constexpr std::uint64_t max_limit = 1000000;

const option_spec option_table[] = {
    {"listen", "HOST:PORT", arity::single,
     "default 127.0.0.1:8443; [::1]:8443 for IPv6; port 0 = any free port",
     [](options& o, const std::string& f, const std::string& v) {
         o.endpoint = parse_listen(f, v);
         o.listen = v;
     }},
    {"cert", "FILE", arity::single, "PEM certificate chain (default certs/server.pem)",
     [](options& o, const std::string&, const std::string& v) { o.cert = v; }},
    {"key", "FILE", arity::single, "PEM private key (default certs/server.key)",
     [](options& o, const std::string&, const std::string& v) { o.key = v; }},
    {"directory", "FILE", arity::single, "customers, teams and profiles (JSON; required)",
     [](options& o, const std::string&, const std::string& v) { o.directory = v; }},
    {"signing-key", "FILE", arity::single,
     "\"KID SECRET\" lines; the first signs (default: a random key per run)",
     [](options& o, const std::string&, const std::string& v) { o.signing_key = v; }},
    {"audit-log", "FILE", arity::single, "JSON Lines audit trail, appended",
     [](options& o, const std::string&, const std::string& v) { o.audit_log = v; }},
    {"audit-fsync", "always|batch|never", arity::single,
     "fdatasync per line, every 100 ms (batch, the default), or never",
     [](options& o, const std::string& f, const std::string& v) {
         if (v == "always")
             o.audit_sync = audit_sync::always;
         else if (v == "batch")
             o.audit_sync = audit_sync::batch;
         else if (v == "never")
             o.audit_sync = audit_sync::never;
         else
             throw usage_error{f + ": expected always, batch or never, got \"" + v + "\""};
     }},
    {"threads", "N", arity::single, "I/O threads (default: hardware threads)",
     [](options& o, const std::string& f, const std::string& v) {
         o.threads = static_cast<unsigned>(parse_number(f, v, 1, 256));
     }},
    {"hash-threads", "N", arity::single,
     "password-hashing threads (default: hardware threads - 1, at least 1)",
     [](options& o, const std::string& f, const std::string& v) {
         o.hash_threads = static_cast<unsigned>(parse_number(f, v, 1, 256));
     }},
    {"hash-queue", "N", arity::single,
     "logins that may wait for a hashing thread before 503, default 64",
     [](options& o, const std::string& f, const std::string& v) {
         o.hash_queue = parse_number(f, v, 1, 100000);
     }},
    {"session-ttl", "SEC", arity::single, "default 3600",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.session_ttl = parse_seconds(f, v);
     }},
    {"impersonation-token-ttl", "SEC", arity::single, "default 60",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.impersonation_token_ttl = parse_seconds(f, v);
     }},
    {"impersonation-session-ttl", "SEC", arity::single, "default 1800",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.impersonation_session_ttl = parse_seconds(f, v);
     }},
    {"max-connections", "N", arity::single, "default 10000",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.max_connections = parse_number(f, v, 1, max_limit);
     }},
    {"max-connections-per-address", "N", arity::single,
     "open connections from one client address, default 256 (0 = no limit; trusted proxies "
     "are exempt)",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.max_connections_per_address = parse_number(f, v, 0, max_limit);
     }},
    {"trusted-proxy", "CIDR", arity::repeatable,
     "a reverse proxy whose X-Forwarded-For (or PROXY header) names the client; repeatable, "
     "IPv4 or IPv6; none by default",
     [](options& o, const std::string& f, const std::string& v) {
         auto network = ip_network::parse(v);
         if (!network)
             throw usage_error{f + ": expected an IPv4 or IPv6 address or CIDR block, got \"" + v +
                               "\""};
         o.server.trusted_proxies.push_back(*network);
     }},
    {"proxy-protocol", "", arity::switch_,
     "connections from trusted proxies begin with a PROXY protocol v2 header (HAProxy "
     "send-proxy-v2)",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.proxy_protocol = parse_switch(f, v);
     }},
    {"cors-origin", "ORIGIN", arity::repeatable,
     "a web origin, http(s)://HOST[:PORT] with no path, whose pages may call the API from a "
     "browser (CORS); repeatable; none by default",
     [](options& o, const std::string& f, const std::string& v) {
         auto origin = parse_origin(v);
         if (!origin)
             throw usage_error{f +
                               ": expected an origin http://HOST[:PORT] or "
                               "https://HOST[:PORT] with no path, got \"" +
                               v + "\""};
         if (std::find(o.cors_origins.begin(), o.cors_origins.end(), *origin) ==
             o.cors_origins.end())
             o.cors_origins.push_back(std::move(*origin));
     }},
    {"handshake-timeout", "SEC", arity::single, "default 10",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.handshake_timeout = parse_seconds(f, v);
     }},
    {"header-timeout", "SEC", arity::single, "time to receive a whole request, default 10",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.request_timeout = parse_seconds(f, v);
     }},
    {"idle-timeout", "SEC", arity::single, "keep-alive idle time, default 60",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.idle_timeout = parse_seconds(f, v);
     }},
    {"shutdown-grace", "SEC", arity::single, "time for requests in flight at SIGTERM, default 10",
     [](options& o, const std::string& f, const std::string& v) {
         o.server.shutdown_grace = parse_seconds(f, v);
     }},
    {"disable-impersonation", "", arity::switch_,
     "both impersonation endpoints answer 403, the exchange 401",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.impersonation_enabled = !parse_switch(f, v);
     }},
    {"login-max-failures-per-email-and-address", "N", arity::single,
     "failed logins per e-mail from one address per window before 429, default 5 (0 = off)",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.login_failures_per_email_and_address.max = parse_number(f, v, 0, max_limit);
     }},
    {"login-max-failures-per-email", "N", arity::single,
     "failed logins per e-mail from all addresses per window, default 50 (0 = off)",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.login_failures_per_email.max = parse_number(f, v, 0, max_limit);
     }},
    {"login-max-failures-per-address", "N", arity::single,
     "failed logins per client address per window, default 20 (0 = off)",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.login_failures_per_address.max = parse_number(f, v, 0, max_limit);
     }},
    {"login-failure-window", "SEC", arity::single,
     "the window of the three login limits, default 300", &set_login_window},
    {"exchange-max-failures-per-address", "N", arity::single,
     "failed impersonation-token exchanges and refreshes per client address per minute before "
     "429, default 20 (0 = off)",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.exchange_failures_per_address.max = parse_number(f, v, 0, max_limit);
     }},
    {"impersonation-issue-limit", "N", arity::single,
     "impersonation tokens per actor per minute, default 30 (0 = off)",
     [](options& o, const std::string& f, const std::string& v) {
         o.service.impersonations_per_actor.max = parse_number(f, v, 0, max_limit);
     }},
};

const option_spec* find_spec(std::string_view name) {
    for (const auto& spec : option_table)
        if (spec.name == name)
            return &spec;
    return nullptr;
}

using texts = std::vector<std::string>;

// Every value is kept as text, one entry per occurrence; a switch on the command line is "true".
po::options_description settings_description() {
    po::options_description desc("options", 100, 46);
    for (const auto& spec : option_table) {
        auto* value = po::value<texts>();
        if (spec.takes == arity::switch_)
            value->zero_tokens()->implicit_value(texts{"true"}, "");
        else
            value->value_name(std::string(spec.value_name));
        desc.add_options()(std::string(spec.name).c_str(), value, std::string(spec.help).c_str());
    }
    return desc;
}

po::options_description command_line_only_description() {
    po::options_description desc("general", 100, 46);
    desc.add_options()("config", po::value<texts>()->value_name("FILE"),
                       "read options from this INI file (\"session-ttl = 3600\")");
    desc.add_options()("help,h", "print this help");
    desc.add_options()("version", "print the version and those of Boost and OpenSSL");
    return desc;
}

// The option a PORTAL_AUTH_* name stands for (lower case, '-' for '_'), whether or not it exists.
std::string option_of_env(std::string_view variable) {
    std::string option;
    for (char c : variable.substr(env_prefix.size()))
        option += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return option;
}

// "a, b,c" -> {"a", "b", "c"}; empty items are dropped.
texts split_list(std::string_view text) {
    texts items;
    while (!text.empty()) {
        const auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (!item.empty())
            items.emplace_back(item);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return items;
}

// The flag Program_options names in an error ("--listen"), or its message when it names none.
std::string command_line_error(const po::error& e) {
    if (const auto* syntax = dynamic_cast<const po::invalid_command_line_syntax*>(&e)) {
        const std::string flag = syntax->get_option_name();
        switch (syntax->kind()) {
        case po::invalid_syntax::missing_parameter:
            return flag + ": missing value";
        case po::invalid_syntax::extra_parameter:
            return flag + ": takes no value";
        default:
            break;
        }
    }
    return e.what();
}

// PORTAL_AUTH_* variables as Program_options options; warns about those that name none.
po::parsed_options environment_options(const po::options_description& desc, const char* const* env,
                                       std::ostream& warnings,
                                       std::map<std::string, std::string>& given_as) {
    po::parsed_options parsed(&desc);
    for (; env && *env; ++env) {
        const std::string_view entry(*env);
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos || !entry.starts_with(env_prefix))
            continue;
        const std::string variable(entry.substr(0, eq));
        const std::string_view value = entry.substr(eq + 1);
        const std::string option = option_of_env(variable);
        const option_spec* spec = find_spec(option);
        if (!spec && option != "config") {
            warnings << "portal-auth: warning: ignoring " << variable << ": no option --" << option
                     << '\n';
            continue;
        }
        if (value.empty())
            continue; // set but empty counts as unset
        const texts values = spec && spec->takes == arity::repeatable ? split_list(value)
                                                                      : texts{std::string(value)};
        for (const auto& v : values)
            parsed.options.emplace_back(option, texts{v});
        if (!values.empty())
            given_as.emplace(option, variable);
    }
    return parsed;
}

std::string read_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw usage_error{path + ": cannot read the config file: " + std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        throw usage_error{path + ": cannot read the config file: " + std::strerror(errno)};
    return text.str();
}

po::parsed_options file_options(const po::options_description& desc, const std::string& path,
                                std::map<std::string, std::string>& given_as) {
    std::istringstream text(read_config_file(path));
    po::parsed_options parsed(&desc);
    try {
        parsed = po::parse_config_file(text, desc, true);
    } catch (const po::error& e) {
        throw usage_error{path + ": " + e.what()};
    }
    for (const auto& option : parsed.options) {
        if (option.unregistered)
            throw usage_error{path + ": unknown option \"" + option.string_key + "\""};
        given_as.emplace(option.string_key, path + ": " + option.string_key);
    }
    return parsed;
}

void store_options(const po::parsed_options& parsed, po::variables_map& vm) {
    try {
        po::store(parsed, vm);
    } catch (const po::error& e) {
        throw usage_error{e.what()};
    }
}

} // namespace

options::options()
    : threads(std::max(1u, std::thread::hardware_concurrency())),
      hash_threads(default_hash_threads()) {}

parsed_options parse_options(const std::vector<std::string_view>& args, const char* const* env,
                             std::ostream& warnings) {
    const po::options_description settings = settings_description();
    po::options_description command_line = command_line_only_description();
    command_line.add(settings);

    // Where each option was given first, which is the one that counts: flag, variable or file.
    std::map<std::string, std::string> given_as;
    po::variables_map vm;

    // 1. Flags. No abbreviations ("--list" is not --listen); anything unknown is an error.
    const std::vector<std::string> arguments(args.begin(), args.end());
    po::parsed_options flags(&command_line);
    try {
        flags = po::command_line_parser(arguments)
                    .options(command_line)
                    .style(po::command_line_style::default_style &
                           ~po::command_line_style::allow_guessing)
                    .allow_unregistered()
                    .run();
    } catch (const po::error& e) {
        throw usage_error{command_line_error(e)};
    }
    const auto unknown = po::collect_unrecognized(flags.options, po::include_positional);
    if (!unknown.empty())
        throw usage_error{"unknown option \"" + unknown.front() + "\" (see portal-auth --help)"};
    for (const auto& option : flags.options)
        given_as.emplace(option.string_key, "--" + option.string_key);
    store_options(flags, vm);

    parsed_options result;
    if (vm.count("help"))
        result.what = request::help;
    else if (vm.count("version"))
        result.what = request::version;
    if (result.what != request::run)
        return result;

    // 2. Environment, 3. the file: store() keeps the first source's value of each option.
    po::options_description env_options = settings;
    env_options.add_options()("config", po::value<texts>());
    store_options(environment_options(env_options, env, warnings, given_as), vm);
    options& opts = result.settings;
    if (vm.count("config")) {
        opts.config_file = vm["config"].as<texts>().back();
        store_options(file_options(settings, opts.config_file, given_as), vm);
    }

    for (const auto& spec : option_table) {
        const std::string name(spec.name);
        if (!vm.count(name))
            continue;
        const auto& values = vm[name].as<texts>();
        const std::string& flag = given_as.at(name);
        if (spec.takes == arity::repeatable) {
            for (const auto& value : values)
                spec.apply(opts, flag, value);
        } else {
            // Given twice in one place: the last one counts.
            spec.apply(opts, flag, values.back());
        }
    }
    if (opts.directory.empty())
        throw usage_error{"--directory FILE is required"};
    if (opts.server.proxy_protocol && opts.server.trusted_proxies.empty())
        throw usage_error{"--proxy-protocol needs --trusted-proxy: it applies to connections "
                          "from trusted proxies only"};
    return result;
}

std::string usage_text() {
    po::options_description all = command_line_only_description();
    all.add(settings_description());
    std::ostringstream out;
    out << R"(usage:
  portal-auth [serve] [options]       run the HTTPS server
  portal-auth check-config [options]  load and check every setting and file, bind nothing; print
                                      one OK line (exit 0) or the error serve would (exit 2)
  portal-auth hash-password           read a password on stdin, print its scrypt hash
  portal-auth gen-key KID             print a new signing-key line "KID SECRET"
  portal-auth --version               the version, git commit, Boost and OpenSSL versions

Each option can also be set by an environment variable PORTAL_AUTH_<OPTION> (upper case, '_'
for '-': PORTAL_AUTH_SESSION_TTL=3600; a repeatable option's values comma-separated; a switch as
true or false) or in the --config file (INI: "session-ttl = 3600", "# comment", a repeatable
option on several lines, a switch as "proxy-protocol = true"). A flag beats the environment,
which beats the file; a repeatable option's values all come from the first of these that has it.

)";
    out << all;
    return out.str();
}

} // namespace portal_auth::app
