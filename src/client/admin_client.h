// `fsout admin`: asks fsoutd's admin socket what it is doing and shows it as tables or JSON.
#pragma once

#include <optional>
#include <string>

namespace fsout::client {

// Sends `request` ("stats", "sessions", "exports") to the admin socket at `address`
// ("unix:PATH"); returns the JSON line. Throws std::runtime_error with a one-line message.
std::string admin_request(const std::string& address, const std::string& request);

// The answer as a table for `view` ("stats": per operation; "sessions": per session;
// "exports": per export); nullopt with `error` set when the answer is not fsoutd's document.
std::optional<std::string> admin_table(const std::string& json, const std::string& view,
                                       std::string& error);

}  // namespace fsout::client
