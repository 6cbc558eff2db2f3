#include "host/config.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace fsout::host {
namespace {

enum class KeyKind { kValue, kRepeated, kBoolean, kPath, kGlobalOnly };

// The keys, in the order their options go on an export's command line.
const std::vector<std::pair<std::string, KeyKind>>& key_table() {
  static const std::vector<std::pair<std::string, KeyKind>> table = {
      {"admin", KeyKind::kGlobalOnly},    {"log-level", KeyKind::kGlobalOnly},
      {"path", KeyKind::kPath},           {"listen", KeyKind::kRepeated},
      {"read-only", KeyKind::kBoolean},   {"serial-streams", KeyKind::kBoolean},
      {"threads", KeyKind::kValue},       {"max-message", KeyKind::kValue},
      {"max-handles", KeyKind::kValue},   {"max-nodes", KeyKind::kValue},
      {"max-sessions", KeyKind::kValue},  {"export-name", KeyKind::kValue},
      {"sandbox", KeyKind::kValue},       {"state-dir", KeyKind::kValue},
      {"resume-window", KeyKind::kValue}, {"uid-map", KeyKind::kRepeated},
      {"gid-map", KeyKind::kRepeated},    {"squash", KeyKind::kValue}};
  return table;
}

std::optional<KeyKind> kind_of(const std::string& key) {
  for (const auto& [name, kind] : key_table())
    if (name == key) return kind;
  return std::nullopt;
}

std::optional<bool> boolean(const std::string& value) {
  static const std::set<std::string> yes = {"yes", "true", "on", "1"},
                                     no = {"no", "false", "off", "0"};
  if (yes.count(value)) return true;
  if (no.count(value)) return false;
  return std::nullopt;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

bool good_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

// key -> values (several for repeated keys), as one section (or the global part) set them.
using Settings = std::map<std::string, std::vector<std::string>>;

struct Section {
  std::string name, where;
  Settings settings;
};

}  // namespace

const std::vector<std::string>& configuration_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const auto& [name, kind] : key_table()) out.push_back(name);
    return out;
  }();
  return keys;
}

const ExportSpec* Configuration::find(const std::string& name) const {
  for (const auto& spec : exports)
    if (spec.name == name) return &spec;
  return nullptr;
}

ConfigResult parse_configuration(const std::vector<std::pair<std::string, std::string>>& files,
                                 const std::string& state_base) {
  ConfigResult result;
  Settings global;
  std::vector<Section> sections;
  std::set<std::string> names;
  for (size_t f = 0; f < files.size(); ++f) {
    const auto& [file, text] = files[f];
    std::istringstream lines(text);
    std::string raw;
    Section* section = nullptr;
    for (int number = 1; std::getline(lines, raw); ++number) {
      const std::string where = file + ":" + std::to_string(number);
      const std::string line = trim(raw);
      if (line.empty() || line[0] == '#') continue;
      if (line[0] == '[') {
        if (line.back() != ']' || line.rfind("[export ", 0) != 0) {
          result.error = where + ": a section is written [export NAME], not " + line;
          return result;
        }
        const std::string name = trim(line.substr(8, line.size() - 9));
        if (!good_name(name)) {
          result.error = where + ": bad export name '" + name +
                         "' (letters, digits, '.', '_' and '-'; at most 64)";
          return result;
        }
        if (!names.insert(name).second) {
          result.error = where + ": the export " + name + " is described twice";
          return result;
        }
        sections.push_back({name, where, {}});
        section = &sections.back();
        continue;
      }
      const auto equals = line.find('=');
      if (equals == std::string::npos) {
        result.error = where + ": expected KEY = VALUE, got '" + line + "'";
        return result;
      }
      const std::string key = trim(line.substr(0, equals)), value = trim(line.substr(equals + 1));
      const auto kind = kind_of(key);
      if (!kind) {
        result.error = where + ": unknown key '" + key + "' (see fsoutd.conf(5))";
        return result;
      }
      if (value.empty()) {
        result.error = where + ": " + key + " needs a value";
        return result;
      }
      if (!section && f > 0) {
        result.error = where + ": files in exports.d hold [export NAME] sections only";
        return result;
      }
      if (section && *kind == KeyKind::kGlobalOnly) {
        result.error = where + ": " + key + " belongs before the first [export] section";
        return result;
      }
      // Each export has its own directory, addresses and state: no default for those.
      if (!section && (*kind == KeyKind::kPath || key == "listen" || key == "state-dir")) {
        result.error = where + ": " + key + " belongs in an [export NAME] section";
        return result;
      }
      if (*kind == KeyKind::kBoolean && !boolean(value)) {
        result.error = where + ": " + key + " is yes or no, not '" + value + "'";
        return result;
      }
      Settings& into = section ? section->settings : global;
      auto& values = into[key];
      if (!values.empty() && *kind != KeyKind::kRepeated) {
        result.error = where + ": " + key + " is given twice";
        return result;
      }
      values.push_back(value);
    }
  }

  Configuration config;
  for (const auto& file : files) config.files.push_back(file.first);
  if (auto it = global.find("admin"); it != global.end()) config.admin = it->second[0];
  if (auto it = global.find("log-level"); it != global.end()) config.log_level = it->second[0];
  std::map<std::string, std::string> addresses;  // listen address -> export
  for (const auto& section : sections) {
    ExportSpec spec;
    spec.name = section.name;
    spec.where = section.where;
    // What the section says wins; what it does not say comes from the global part.
    Settings settings = global;
    for (const auto& [key, values] : section.settings) settings[key] = values;
    if (!settings.count("path")) {
      return {std::nullopt, section.where + ": the export " + section.name + " has no path"};
    }
    if (!settings.count("listen"))
      return {std::nullopt, section.where + ": the export " + section.name + " has no listen"};
    spec.listen = settings["listen"];
    for (const auto& address : spec.listen) {
      auto [at, fresh] = addresses.emplace(address, section.name);
      if (!fresh)
        return {std::nullopt, section.where + ": " + address + " is a listen address of " +
                                  at->second + " already"};
    }
    if (!settings.count("state-dir")) settings["state-dir"] = {state_base + "/" + section.name};
    spec.state_dir = settings["state-dir"][0];
    spec.args = {"--name", section.name, "--log-level", config.log_level};
    for (const auto& [key, kind] : key_table()) {
      auto it = settings.find(key);
      if (it == settings.end() || kind == KeyKind::kGlobalOnly || kind == KeyKind::kPath) continue;
      for (const auto& value : it->second) {
        if (kind == KeyKind::kBoolean) {
          if (*boolean(value)) spec.args.push_back("--" + key);
        } else {
          spec.args.push_back("--" + key);
          spec.args.push_back(value);
        }
      }
    }
    spec.args.push_back("--");
    spec.args.push_back(settings["path"][0]);
    config.exports.push_back(std::move(spec));
  }
  result.config = std::move(config);
  return result;
}

ConfigResult load_configuration(const std::string& path, const std::string& state_base) {
  std::vector<std::pair<std::string, std::string>> files;
  auto read = [&](const std::filesystem::path& file) -> bool {
    std::ifstream in(file);
    if (!in) return false;
    std::ostringstream text;
    text << in.rdbuf();
    files.emplace_back(file.string(), text.str());
    return true;
  };
  if (!read(path)) return {std::nullopt, "cannot read the configuration " + path};
  const auto dir = std::filesystem::path(path).parent_path() / "exports.d";
  std::error_code error;
  std::vector<std::filesystem::path> extra;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error))
    if (entry.path().extension() == ".conf" && entry.is_regular_file())
      extra.push_back(entry.path());
  std::sort(extra.begin(), extra.end());
  for (const auto& file : extra)
    if (!read(file)) return {std::nullopt, "cannot read " + file.string()};
  return parse_configuration(files, state_base);
}

}  // namespace fsout::host
