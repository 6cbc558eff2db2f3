// fsoutd's log: one line per event on stderr (journald takes it from there), through spdlog,
// with a level that --log-level chooses. Info lines read "fsoutd: ..." as they always did;
// the others say their level: "fsoutd: warning: ...".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fsout::host::log {

enum class Level { kError, kWarning, kInfo, kDebug };

// "error", "warning", "info", "debug"; nullopt for anything else.
std::optional<Level> parse_level(std::string_view text);

// `name` starts every line: "fsoutd", or "fsoutd[vm1]" for one export of a configuration.
// Before init, lines go out at info level under "fsoutd".
void init(const std::string& name, Level level);
bool enabled(Level level);

void error(const std::string& message);
void warning(const std::string& message);
void info(const std::string& message);
void debug(const std::string& message);

}  // namespace fsout::host::log
