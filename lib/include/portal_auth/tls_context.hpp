// The server's TLS settings: TLS 1.2 and 1.3 only, ECDHE with AEAD suites for 1.2, no
// compression, no renegotiation, session tickets for resumption.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/system/result.hpp>

#include <string>

namespace portal_auth {

// Loads a PEM certificate chain and private key. On failure returns the error and sets
// error_detail to one line naming the file and the problem.
boost::system::result<boost::asio::ssl::context> make_tls_context(const std::string& cert_file,
                                                                  const std::string& key_file,
                                                                  std::string& error_detail);

// The same from PEM text in memory (embedders that keep keys elsewhere; tests).
boost::system::result<boost::asio::ssl::context>
make_tls_context_from_pem(const std::string& cert_pem, const std::string& key_pem,
                          std::string& error_detail);

} // namespace portal_auth
