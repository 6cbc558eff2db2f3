// `fsoutd --config FILE`: one fsoutd process per export of the configuration, each in its
// own sandbox (a sandbox's root is its export, so one process cannot serve two), started,
// watched and restarted by this one. SIGHUP reads the files again: new exports start,
// removed ones are withdrawn (their sessions end), changed ones are restarted (their guests
// resume, as after any restart), unchanged ones are not touched. The admin socket answers
// for all of them.
#pragma once

#include <functional>
#include <string>

#include "host/config.h"

namespace fsout::host {

struct SupervisorOptions {
  std::string config_path;
  std::string state_base;  // load_configuration's
  std::string admin;       // an --admin given on the command line (wins over the file's)
  std::string log_level;   // a --log-level given on the command line (wins over the file's)
  // Checks an export's command line as its process would: "" when good, else the message.
  std::function<std::string(const ExportSpec&)> check;
};

// Runs until SIGTERM or SIGINT (then stops every export gracefully). Returns the exit status.
int run_supervisor(const SupervisorOptions& options, Configuration initial);

// Applies the command line's --log-level to a loaded configuration (its exports' lines too).
void override_log_level(Configuration& config, const std::string& level);

}  // namespace fsout::host
