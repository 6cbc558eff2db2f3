#include "host/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

namespace fsout::host::log {
namespace {

// %* in the pattern: nothing for info lines, "warning: " and the like for the others.
class LevelWord final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    const char* word = "";
    switch (message.level) {
      case spdlog::level::info:
        break;
      case spdlog::level::warn:
        word = "warning: ";
        break;
      case spdlog::level::err:
      case spdlog::level::critical:
        word = "error: ";
        break;
      default:
        word = "debug: ";
        break;
    }
    out.append(word, word + std::strlen(word));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelWord>();
  }
};

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kError:
      return spdlog::level::err;
    case Level::kWarning:
      return spdlog::level::warn;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kDebug:
      return spdlog::level::debug;
  }
  return spdlog::level::info;
}

// Unbuffered stderr, as the lines it replaces: a crash loses none of them. No time stamps:
// journald and the test logs add their own.
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, Level level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto made = std::make_shared<spdlog::logger>(name, sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelWord>('*').set_pattern("%n: %*%v");
  made->set_formatter(std::move(formatter));
  made->set_level(to_spdlog(level));
  made->flush_on(spdlog::level::trace);
  return made;
}

std::mutex logger_mutex;
std::shared_ptr<spdlog::logger> current;
// The level, readable without the mutex: enabled() is asked on request paths.
std::atomic<int> current_level{int(Level::kInfo)};

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard lock(logger_mutex);
  if (!current) current = make_logger("fsoutd", Level::kInfo);
  return current;
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
  if (text == "error") return Level::kError;
  if (text == "warning" || text == "warn") return Level::kWarning;
  if (text == "info") return Level::kInfo;
  if (text == "debug") return Level::kDebug;
  return std::nullopt;
}

void init(const std::string& name, Level level) {
  auto made = make_logger(name, level);
  std::lock_guard lock(logger_mutex);
  current = std::move(made);
  current_level = int(level);
}

bool enabled(Level level) { return int(level) <= current_level.load(std::memory_order_relaxed); }

void error(const std::string& message) {
  logger()->log(spdlog::level::err, spdlog::string_view_t(message));
}
void warning(const std::string& message) {
  logger()->log(spdlog::level::warn, spdlog::string_view_t(message));
}
void info(const std::string& message) {
  logger()->log(spdlog::level::info, spdlog::string_view_t(message));
}
void debug(const std::string& message) {
  logger()->log(spdlog::level::debug, spdlog::string_view_t(message));
}

}  // namespace fsout::host::log
