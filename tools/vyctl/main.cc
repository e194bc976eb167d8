// vyctl's main: the command line, parsed with CLI11, then the mount, then the command.
//
//   vyctl [-m MOUNT] [-h] [--version] COMMAND [ARGS...]
//
// The options before COMMAND are vyctl's own; what follows COMMAND is parsed with that
// command's options (tools/vyctl/commands.cc) and -h/--help, GNU style: options may
// come before or after the positional arguments, "--long=VALUE", "--long VALUE",
// "-x VALUE" and "-xVALUE" are accepted, "--" ends the options and "-" alone is a
// positional argument (stdin).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>

#include "tools/vyctl/vyctl.h"
#include "vineyardfs/version.h"

namespace vyctl {

ExitCode UsageError(const std::string& cmd, const std::string& message) {
  PrintError(cmd.empty() ? message : cmd + ": " + message);
  std::cerr << "Try 'vyctl " << (cmd.empty() ? "" : cmd + " ") << "--help'.\n";
  return kUsage;
}

namespace {

// Takes what CLI11 left over: an option it does not know is an error (returned); what
// follows "--" is positional.
std::string TakeLeftOver(const std::vector<std::string>& left, Args* args) {
  bool ended = false;
  for (const std::string& arg : left) {
    if (ended) {
      args->positional.push_back(arg);
    } else if (arg == "--") {
      ended = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return arg;
    } else {
      args->positional.push_back(arg);
    }
  }
  return "";
}

// Parses argv (CLI11 wants it last first). Returns "" or what is wrong, in vyctl's
// words where it says it otherwise: an option that lacks its value can only be the
// last argument.
std::string Parse(CLI::App* app, const std::vector<std::string>& argv) {
  std::vector<std::string> reversed(argv.rbegin(), argv.rend());
  try {
    app->parse(reversed);
  } catch (const CLI::ArgumentMismatch& e) {
    if (!argv.empty() && argv.back().size() > 1 && argv.back()[0] == '-') {
      return "option '" + argv.back() + "' needs a value";
    }
    return e.what();
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

// "--flag=VALUE" for a flag of `specs` (CLI11 would take VALUE as a count), or "".
std::string FlagWithValue(const std::vector<OptionSpec>& specs,
                          const std::vector<std::string>& argv) {
  for (const std::string& arg : argv) {
    if (arg == "--") break;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) continue;
    for (const OptionSpec& spec : specs) {
      if (!spec.takes_value && arg.substr(2, eq - 2) == spec.long_name) return arg.substr(0, eq);
    }
  }
  return "";
}

// Parses a command's arguments into *args. Returns false on a usage error (*error).
bool ParseCommandArgs(const Command& cmd, const std::vector<std::string>& argv, Args* args,
                      std::string* error) {
  CLI::App app{cmd.summary, std::string("vyctl ") + cmd.name};
  app.set_help_flag();  // -h/--help is ours, below: our own text
  app.allow_extras();   // reported below, as "unknown option"
  std::vector<OptionSpec> specs = cmd.options;
  specs.push_back({'h', "help", false});
  if (std::string flag = FlagWithValue(specs, argv); !flag.empty()) {
    *error = "option '" + flag + "' takes no value";
    return false;
  }
  std::map<std::string, std::string> values;
  std::map<std::string, bool> flags;
  for (const OptionSpec& spec : specs) {
    std::string names = std::string("--") + spec.long_name;
    if (spec.short_name != '\0') names = std::string("-") + spec.short_name + "," + names;
    if (spec.takes_value) {
      app.add_option(names, values[spec.long_name])
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    } else {
      app.add_flag(names, flags[spec.long_name]);
    }
  }
  app.add_option("args", args->positional);
  *error = Parse(&app, argv);
  if (!error->empty()) return false;
  if (std::string arg = TakeLeftOver(app.remaining(), args); !arg.empty()) {
    *error = "unknown option '" + arg + "'";
    return false;
  }
  for (const OptionSpec& spec : specs) {
    if (app.count(std::string("--") + spec.long_name) == 0) continue;
    args->options[spec.long_name] = spec.takes_value ? values[spec.long_name] : "";
  }
  return true;
}

// vyctl's own options, before COMMAND.
struct Global {
  std::string mount;  // -m MOUNT, "" when not given
  bool help = false, version = false;
  std::vector<std::string> rest;  // COMMAND [ARGS...]
};

// Parses the options before COMMAND. Returns -1 to go on, or an exit code (help,
// version, usage error).
int ParseGlobalOptions(int argc, char** argv, Global* g) {
  CLI::App app{"Command-line client of a vineyardfs mount", "vyctl"};
  app.set_help_flag();
  app.prefix_command();  // COMMAND and what follows it are left over
  app.add_flag("-h,--help", g->help);
  app.add_flag("--version", g->version);
  CLI::Option* mount =
      app.add_option("-m,--mount", g->mount)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  const std::string error = Parse(&app, std::vector<std::string>(argv + 1, argv + argc));
  if (!error.empty()) return UsageError("", error);
  if (g->help) {
    PrintMainHelp();
    return kOk;
  }
  if (g->version) {
    std::cout << "vyctl " << VINEYARDFS_VERSION << '\n';
    return kOk;
  }
  g->rest = app.remaining();
  if (!g->rest.empty() && g->rest[0] == "--") g->rest.erase(g->rest.begin());
  if (!g->rest.empty() && g->rest[0].size() > 1 && g->rest[0][0] == '-') {
    return UsageError("", "unknown option '" + g->rest[0] + "'");
  }
  if (mount->count() > 0 && g->mount.empty()) return UsageError("", "empty mount path");
  return -1;
}

// `vyctl help [COMMAND]`.
int RunHelp(const std::vector<std::string>& rest) {
  const Command* cmd = rest.size() < 2 ? nullptr : FindCommand(rest[1]);
  if (rest.size() >= 2 && cmd == nullptr) {
    return UsageError("", "unknown command '" + rest[1] + "'");
  }
  if (cmd != nullptr) {
    PrintCommandHelp(*cmd);
  } else {
    PrintMainHelp();
  }
  return kOk;
}

int Main(int argc, char** argv) {
  Global global;
  if (int code = ParseGlobalOptions(argc, argv, &global); code >= 0) return code;
  if (global.rest.empty()) return UsageError("", "missing command");
  const std::string name = global.rest[0];
  if (name == "help") return RunHelp(global.rest);
  const Command* cmd = FindCommand(name);
  if (cmd == nullptr) return UsageError("", "unknown command '" + name + "'");

  Args args;
  std::string error;
  if (!ParseCommandArgs(*cmd, {global.rest.begin() + 1, global.rest.end()}, &args, &error)) {
    return UsageError(cmd->name, error);
  }
  if (args.Has("help")) {
    PrintCommandHelp(*cmd);
    return kOk;
  }
  if (!CheckArgs(*cmd, args, &error)) return UsageError(cmd->name, error);

  Mount mount;
  if (std::string(cmd->name) != "keygen") {  // the one command that needs no mount
    if (ExitCode code = OpenMount(global.mount, &mount)) return code;
  }
  ExitCode code = cmd->run(mount, args);
  if (!std::cout.flush()) {
    PrintError("writing to stdout failed");
    code = kFailed;
  }
  return code;
}

}  // namespace

}  // namespace vyctl

int main(int argc, char** argv) {
  try {
    return vyctl::Main(argc, argv);
  } catch (const std::exception& e) {
    vyctl::PrintError(std::string("internal error: ") + e.what());
  } catch (...) {
    vyctl::PrintError("internal error");
  }
  return vyctl::kFailed;
}
