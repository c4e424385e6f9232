// The settings of `portal-auth serve` and `check-config`, from three places: command-line flags,
// PORTAL_AUTH_* environment variables and an INI file named by --config. A flag beats the
// environment, which beats the file.
#pragma once

#include <portal_auth/audit_log.hpp>
#include <portal_auth/auth_service.hpp>
#include <portal_auth/server.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace portal_auth::app {

// A start-up failure: printed as one line, "portal-auth: <message>", exit code 2.
struct usage_error {
    std::string message;
};

struct options {
    std::string listen = "127.0.0.1:8443"; // as written, for messages
    boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::make_address_v4("127.0.0.1"), 8443};
    std::string cert = "certs/server.pem";
    std::string key = "certs/server.key";
    std::string directory;
    std::string signing_key;
    std::string audit_log;
    portal_auth::audit_sync audit_sync = portal_auth::audit_sync::batch;
    unsigned threads;
    unsigned hash_threads;
    std::size_t hash_queue = 64;
    // Canonical origins (parse_origin) allowed to call from a browser; none by default.
    std::vector<std::string> cors_origins;
    service_config service;
    server_config server;
    // The --config file read, if any.
    std::string config_file;

    options();
};

// What the command line asked for besides serving.
enum class request { run, help, version };

struct parsed_options {
    request what = request::run;
    options settings;
};

// Reads the flags in `args` (after the subcommand), then the PORTAL_AUTH_* variables of `env`
// (a NULL-terminated "NAME=value" array, like environ), then the --config file, and validates
// every value. --help and --version are looked at before anything else is read. Writes one
// warning line to `warnings` per PORTAL_AUTH_* variable that names no option. Throws
// usage_error.
parsed_options parse_options(const std::vector<std::string_view>& args, const char* const* env,
                             std::ostream& warnings);

// The usage text: the commands, then every option with its default.
std::string usage_text();

} // namespace portal_auth::app
