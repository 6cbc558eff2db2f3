#include "client/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "transport/address.h"

namespace fsout::client {
namespace {

using nlohmann::json;

// Columns padded to their widest cell; numbers right-aligned.
std::string render(const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& rows,
                   const std::vector<bool>& numeric) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t c = 0; c < cells.size(); ++c) {
      const size_t pad = width[c] - cells[c].size();
      if (c) text += "  ";
      if (numeric[c])
        text += std::string(pad, ' ') + cells[c];
      else
        text += cells[c] + (c + 1 < cells.size() ? std::string(pad, ' ') : "");
    }
    out += text + "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out;
}

std::string text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "-";
  return value.dump();
}

std::string number(const json& object, const char* key) {
  return object.contains(key) ? text(object[key]) : "-";
}

std::string uptime(const json& object) {
  if (!object.contains("uptime_s") || !object["uptime_s"].is_number()) return "-";
  long long s = object["uptime_s"].get<long long>();
  char buffer[32];
  if (s >= 86400)
    std::snprintf(buffer, sizeof(buffer), "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  else if (s >= 3600)
    std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm", s / 3600, s % 3600 / 60);
  else
    std::snprintf(buffer, sizeof(buffer), "%lldm%02llds", s / 60, s % 60);
  return buffer;
}

}  // namespace

std::string admin_request(const std::string& address, const std::string& request) {
  if (address.rfind("unix:", 0) != 0)
    throw std::runtime_error("the admin address is unix:PATH, not '" + address + "'");
  const std::string path = address.substr(5);
  int fd;
  try {
    fd = transport::connect_to(transport::parse_address(address));
  } catch (const transport::TransportError& error) {
    const std::string what = error.what();
    const bool denied = what.find(std::strerror(EACCES)) != std::string::npos;
    throw std::runtime_error(what + (denied ? " (the admin socket is root's: run as root)" : ""));
  }
  const std::string line = request + "\n";
  // The answer is read even when the request could not be sent: a refused client's answer
  // may be there already, the other end closed.
  send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  bool ok = true;
  std::string answer;
  while (ok) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) {
      ok = false;
      break;
    }
    char buffer[65536];
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buffer, size_t(n));
    if (answer.back() == '\n') break;
  }
  close(fd);
  if (!ok || answer.empty() || answer.back() != '\n')
    throw std::runtime_error("the admin socket " + path + " did not answer");
  answer.pop_back();
  return answer;
}

std::optional<std::string> admin_table(const std::string& answer, const std::string& view,
                                       std::string& error) {
  const json doc = json::parse(answer, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "the answer is not JSON";
    return std::nullopt;
  }
  if (doc.contains("error")) {
    error = "fsoutd says: " + text(doc["error"]);
    return std::nullopt;
  }
  if (!doc.contains("exports") || !doc["exports"].is_array()) {
    error = "the answer has no exports";
    return std::nullopt;
  }
  std::vector<std::vector<std::string>> rows;
  if (view == "exports") {
    for (const auto& e : doc["exports"]) {
      std::string listen;
      if (e.contains("listen"))
        for (const auto& a : e["listen"]) listen += (listen.empty() ? "" : " ") + text(a);
      rows.push_back({number(e, "name"), number(e, "state").empty() ? "-" : number(e, "state"),
                      number(e, "path"), listen.empty() ? "-" : listen, number(e, "sessions_now"),
                      number(e, "sessions_total"), uptime(e)});
    }
    // A plain fsoutd has no state: it is running, or it would not answer.
    for (auto& row : rows)
      if (row[1] == "-") row[1] = "running";
    return render({"EXPORT", "STATE", "DIRECTORY", "LISTEN", "SESSIONS", "TOTAL", "UPTIME"}, rows,
                  {false, false, false, false, true, true, true});
  }
  if (view == "sessions") {
    for (const auto& e : doc["exports"]) {
      if (!e.contains("sessions")) continue;
      for (const auto& s : e["sessions"])
        rows.push_back({number(e, "name"), number(s, "peer"),
                        s.value("guest_os", "").empty() ? "-" : text(s["guest_os"]), uptime(s),
                        number(s, "requests"), number(s, "errors"), number(s, "bytes_read"),
                        number(s, "bytes_written"), number(s, "nodes"), number(s, "handles"),
                        number(s, "notifications")});
    }
    return render({"EXPORT", "PEER", "GUEST", "UPTIME", "REQUESTS", "ERRORS", "READ", "WRITTEN",
                   "NODES", "HANDLES", "NOTIFIED"},
                  rows, {false, false, false, true, true, true, true, true, true, true, true});
  }
  if (view == "stats") {
    std::string out;
    for (const auto& e : doc["exports"]) {
      out += "export " + number(e, "name");
      if (!e.contains("totals")) {
        out += ": " + number(e, "state") + "\n\n";
        continue;
      }
      const json& t = e["totals"];
      out += ": " + number(t, "requests") + " requests, " + number(t, "errors") + " errors, " +
             number(t, "bytes_read") + " bytes read, " + number(t, "bytes_written") + " written, " +
             number(t, "notifications") + " notifications; " + number(e, "sessions_now") +
             " sessions now, " + number(e, "sessions_total") + " in all\n";
      rows.clear();
      if (t.contains("operations"))
        for (const auto& [name, op] : t["operations"].items())
          rows.push_back({name, number(op, "count"), number(op, "errors"), number(op, "p50_us"),
                          number(op, "p90_us"), number(op, "p99_us"), number(op, "max_us")});
      out += render({"OPERATION", "COUNT", "ERRORS", "P50_US", "P90_US", "P99_US", "MAX_US"}, rows,
                    {false, true, true, true, true, true, true});
      out += "\n";
    }
    return out;
  }
  error = "unknown view '" + view + "' (stats, sessions or exports)";
  return std::nullopt;
}

}  // namespace fsout::client
