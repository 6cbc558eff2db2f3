// fsoutd's configuration file (fsoutd.conf(5)): exports, each served by its own fsoutd
// process. The file is turned into each export's command line; the command-line parser then
// checks the values, so that a key means exactly what the option of the same name means.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace fsout::host {

struct ExportSpec {
  std::string name;
  std::string where;              // "FILE:LINE" of its [export NAME] line, for messages
  std::vector<std::string> args;  // fsoutd's options for it, ending with "--" and the directory
  std::vector<std::string> listen;
  std::string state_dir;
  bool operator==(const ExportSpec& other) const { return args == other.args; }
};

struct Configuration {
  std::string admin;  // "unix:PATH" of the admin socket, or empty
  std::string log_level = "info";
  std::vector<ExportSpec> exports;
  std::vector<std::string> files;  // what was read, in order
  const ExportSpec* find(const std::string& name) const;
};

struct ConfigResult {
  std::optional<Configuration> config;  // set when the files were good
  std::string error;                    // otherwise "FILE:LINE: what is wrong"
};

// Reads `path` and then every *.conf file in the exports.d directory beside it (in name
// order). `state_base`: where exports keep their state unless they say (state_base/NAME).
ConfigResult load_configuration(const std::string& path, const std::string& state_base);

// The same for text already read (tests): `files` are (name, contents); the first is the
// main file, the others may hold only [export] sections.
ConfigResult parse_configuration(const std::vector<std::pair<std::string, std::string>>& files,
                                 const std::string& state_base);

// Every key a file may hold (for the documentation's test and for messages).
const std::vector<std::string>& configuration_keys();

}  // namespace fsout::host
