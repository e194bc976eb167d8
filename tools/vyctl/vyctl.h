// vyctl: the command-line client of a vineyardfs mount.
//
// tools/vyctl/: main.cc parses the command line (CLI11) and opens the mount;
// commands.cc holds the command table and the help; objects.cc, put.cc, names.cc
// and status.cc run the commands; files.cc and mount.cc are their helpers.
//
// vyctl works only through the filesystem that the vineyardfs daemon mounts
// (DESIGN.md §3-§5): it lists objects/ and names/, reads meta.json, data and
// status.json, creates objects by writing files into new/, and uses xattrs,
// symlinks, rename, rmdir and statfs for everything else. It opens no socket
// and knows nothing of the daemon's internals, so it works from any directory
// against any daemon that honours the contract.
//
// The mount is `-m MOUNT`, else $VINEYARDFS_MOUNT, else /vineyard. Every
// command first checks that MOUNT/status.json exists.
//
// A REF argument is an object id ("o" + 16 lowercase hex digits) or a name in
// MOUNT/names/. Text that is neither a valid id nor an existing name is an
// invalid id if it starts with 'o', and an unknown name otherwise.
//
// Exit status:
//   0  success
//   1  an operation failed (each failure is reported on stderr)
//   1  also: no vineyardfs daemon serves MOUNT (a dead mount, or not mounted)
//   2  usage error, MOUNT is another file system, or an invalid object id
//
// Output meant for scripts (ids, listings, JSON, payloads) goes to stdout;
// errors and warnings go to stderr, prefixed with "vyctl: ".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace vyctl {

// Keeps the member order of status.json and of the JSON vyctl prints.
using Json = nlohmann::ordered_json;

constexpr char kDefaultMount[] = "/vineyard";
constexpr char kXattrPrefix[] = "user.vineyard.";
constexpr char kMetaSuffix[] = ".meta.json";
constexpr size_t kChunkSize = size_t{1} << 20;  // read/write loop size
constexpr size_t kNameMax = 255;                // longest file name (NAME_MAX)
constexpr size_t kAnyCount = SIZE_MAX;          // no limit on positionals

enum ExitCode : int { kOk = 0, kFailed = 1, kUsage = 2 };

inline ExitCode Worst(ExitCode a, ExitCode b) { return a > b ? a : b; }

// ---- files.cc: text helpers and syscall wrappers ---------------------------------

void PrintError(const std::string& message);
std::string ErrnoText(int err);
void PrintJson(const Json& j);
bool EndsWith(const std::string& s, const std::string& suffix);
// The last component of a path or symlink target ("../objects/o12" -> "o12").
std::string LastComponent(std::string path);
// "o" followed by exactly 16 lowercase hex digits (DESIGN.md §3).
bool IsObjectId(const std::string& s);
// A name is a single entry of names/.
bool IsValidName(const std::string& s);
// What is wrong with a name that vyctl is asked to create, or "". A name
// spelled like an object id is refused: as a REF it would always mean the id.
std::string NewNameProblem(const std::string& name);

// Each returns 0 on success or the errno of the failure.
int ReadLink(const std::string& path, std::string* target);
int GetXattr(const std::string& path, const std::string& key, std::string* value);
int ListXattr(const std::string& path, std::vector<std::string>* keys);
int SetXattr(const std::string& path, const std::string& key, const std::string& value);
// The entries of a directory except "." and "..", unsorted.
int ListDir(const std::string& path, std::vector<std::string>* entries);
int WriteAll(int fd, const char* data, size_t size);
// Copies in_fd to its end into out_fd in kChunkSize pieces. On failure
// returns the errno and sets *write_failed to say which side failed.
int CopyFd(int in_fd, int out_fd, bool* write_failed);
int ReadFile(const std::string& path, std::string* contents);
bool Exists(const std::string& path);

// ---- mount.cc: the mount and its objects ----------------------------------------

// Paths inside one vineyardfs mount (DESIGN.md §3).
struct Mount {
  std::string root;

  std::string Path(const std::string& rel) const { return root + "/" + rel; }
  std::string Object(const std::string& id) const { return Path("objects/" + id); }
  std::string Name(const std::string& name) const { return Path("names/" + name); }
};

// Resolves the mount point (`root`, else $VINEYARDFS_MOUNT, else kDefaultMount) and
// checks that a vineyardfs daemon serves it; reports the failure itself.
ExitCode OpenMount(std::string root, Mount* m);
// Explains an errno from an operation on objects/<id>: ENOENT on an object
// that is not there is "no such object", anything else its strerror.
std::string ObjectErrorText(const Mount& m, const std::string& id, int err);
// Resolves REF (an object id or a name) to an object id. On failure reports
// it as "CMD REF: ..." and returns kUsage for text that cannot be a REF,
// kFailed for a name that does not exist or does not name an object.
ExitCode ResolveRef(const Mount& m, const std::string& cmd, const std::string& ref,
                    std::string* id);
// Resolves every REF before anything is changed, so that a typo among the
// arguments of a destructive command aborts it as a whole (exit 2). REFs that
// fail for another reason are reported and left out of *ids.
ExitCode ResolveAll(const Mount& m, const std::string& cmd, const std::vector<std::string>& refs,
                    std::vector<std::pair<std::string, std::string>>* ids);
// Object attributes keyed by their short name ("typename"); attributes that
// cannot be read are absent.
using Attrs = std::map<std::string, std::string>;
Attrs ReadAttrs(const std::string& path, const std::vector<std::string>& keys);
// The short names of all user.vineyard.* attributes of path, known ones first.
int ListVineyardAttrs(const std::string& path, std::vector<std::string>* keys);
// An attribute as a JSON value: flags as booleans, counts as numbers, other
// text as strings; a missing attribute is null.
Json AttrJson(const Attrs& attrs, const std::string& key);
// The valid object ids in objects/, sorted.
int ListObjectIds(const Mount& m, std::vector<std::string>* ids);
// names/ as (name, id) pairs sorted by name ("" for a link that cannot be read).
int ListNames(const Mount& m, std::vector<std::pair<std::string, std::string>>* names);
// Creates names/NAME -> ../objects/<id>, with `replace` atomically over an existing
// NAME. Returns 0 or an errno.
int LinkName(const Mount& m, const std::string& id, const std::string& name, bool replace);

// ---- the command line -----------------------------------------------------------

// One option of a command (besides -h/--help).
struct OptionSpec {
  char short_name;        // '\0' when the option has no short form
  const char* long_name;  // also its key in Args::options
  bool takes_value;
};

// A command's parsed arguments.
struct Args {
  std::map<std::string, std::string> options;  // long name -> value ("" for flags)
  std::vector<std::string> positional;

  bool Has(const char* name) const { return options.count(name) != 0; }
  std::string Value(const char* name) const {
    auto it = options.find(name);
    return it == options.end() ? "" : it->second;
  }
};

// Reports a usage error ("vyctl: CMD: message" and where the help is); returns kUsage.
ExitCode UsageError(const std::string& cmd, const std::string& message);

// ---- commands.cc: the command table ---------------------------------------------

struct Command {
  const char* name;
  const char* usage;                // the synopsis after "vyctl "
  const char* summary;              // one line for `vyctl --help`
  const char* help;                 // what it does and its options
  std::vector<OptionSpec> options;  // besides -h/--help
  size_t min_args;
  size_t max_args;
  bool (*check)(const Args&, std::string* error);  // extra checks, or nullptr
  ExitCode (*run)(const Mount&, const Args&);
};

const std::vector<Command>& Commands();
const Command* FindCommand(const std::string& name);
void PrintMainHelp();
void PrintCommandHelp(const Command& cmd);
// Checks the positional count (and the command's own checks).
bool CheckArgs(const Command& cmd, const Args& args, std::string* error);

// Each runs after its arguments were parsed and the mount checked, reports its own
// errors and returns the exit code.
ExitCode RunLs(const Mount& m, const Args& args);          // objects.cc
ExitCode RunStat(const Mount& m, const Args& args);        // objects.cc
ExitCode RunGet(const Mount& m, const Args& args);         // objects.cc
ExitCode RunMeta(const Mount& m, const Args& args);        // objects.cc
ExitCode RunRm(const Mount& m, const Args& args);          // objects.cc
ExitCode RunPersist(const Mount& m, const Args& args);     // objects.cc
ExitCode RunPut(const Mount& m, const Args& args);         // put.cc
ExitCode RunNames(const Mount& m, const Args& args);       // names.cc
ExitCode RunName(const Mount& m, const Args& args);        // names.cc
bool CheckNameArgs(const Args& args, std::string* error);  // names.cc
ExitCode RunStatus(const Mount& m, const Args& args);      // status.cc
ExitCode RunKeygen(const Mount& m, const Args& args);      // status.cc

}  // namespace vyctl
