// The command table of vyctl and its help texts.
#include <iostream>

#include "tools/vyctl/vyctl.h"

namespace vyctl {

namespace {

// clang-format off
const std::vector<Command> kCommands = {
  {"ls", "ls [-l] [--json] [--failed]",
   "list objects",
   "List the objects this node can see, one id per line, sorted.\n\n"
   "  -l, --long  also show typename, nbytes, persisted/transient and names\n"
   "      --json  print a JSON array of {id, typename, nbytes, persist,\n"
   "              global, local, names}\n"
   "      --failed  list the files in new/ whose seal failed instead: file,\n"
   "              errno and reason (--json: [{file, errno, error}])\n",
   {{'l', "long", false}, {'\0', "json", false}, {'\0', "failed", false}}, 0, 0, nullptr,
   RunLs},
  {"stat", "stat REF [--json]",
   "show the attributes of an object",
   "Print the user.vineyard.* attributes of an object as 'key: value' lines.\n\n"
   "      --json  print them as a JSON object\n",
   {{'\0', "json", false}}, 1, 1, nullptr, RunStat},
  {"put", "put FILE|- [--name NAME] [--persist] [--meta | --batch]",
   "create an object from a file; print its id",
   "Create an object from FILE (or stdin for '-') by writing it into\n"
   "MOUNT/new/, and print its id. FILE becomes a vineyard::Blob, or a typed\n"
   "object when a builder plugin claims its suffix; a FILE ending in\n"
   ".meta.json is metadata JSON and creates a metadata object; a FILE ending\n"
   "in .batch is a batch (a manifest, a NUL, the payload) and creates all its\n"
   "objects or none; the id printed is the batch's root.\n"
   "If sealing fails, the written file is kept in MOUNT/new/.\n\n"
   "      --name NAME  then give the object NAME (fails if NAME exists)\n"
   "      --persist    then persist the object\n"
   "      --meta       treat FILE as metadata JSON whatever its name\n"
   "      --batch      treat FILE as a batch whatever its name\n",
   {{'\0', "name", true}, {'\0', "persist", false}, {'\0', "meta", false},
    {'\0', "batch", false}},
   1, 1, nullptr, RunPut},
  {"get", "get REF [-o OUT]",
   "write the payload of a blob",
   "Write the payload of a blob to stdout.\n\n"
   "  -o, --output OUT  write it to the file OUT instead ('-': stdout)\n",
   {{'o', "output", true}}, 1, 1, nullptr, RunGet},
  {"meta", "meta REF",
   "print the metadata of an object",
   "Print the metadata (meta.json) of an object.\n",
   {}, 1, 1, nullptr, RunMeta},
  {"rm", "rm REF...",
   "delete objects",
   "Delete objects, with their members that no other object references.\n"
   "Deleting a member of another object fails with EBUSY. Each failure is\n"
   "reported and the others proceed; a malformed id stops all of them.\n",
   {}, 1, kAnyCount, nullptr, RunRm},
  {"persist", "persist REF...",
   "persist objects",
   "Persist objects (and their members): their metadata becomes visible\n"
   "on every node of the cluster.\n",
   {}, 1, kAnyCount, nullptr, RunPersist},
  {"name", "name REF NAME [-f] | name -d NAME... | name [--json]",
   "put, drop or list names",
   "Give the object REF the name NAME, drop names, or list names.\n\n"
   "  -f, --force   replace NAME atomically if it exists\n"
   "  -d, --delete  drop the given names (the objects stay)\n"
   "      --json    list names as a JSON object {name: id}\n",
   {{'f', "force", false}, {'d', "delete", false}, {'\0', "json", false}}, 0, kAnyCount,
   CheckNameArgs, RunName},
  {"names", "names [--json]",
   "list names",
   "List names and the ids they point to, sorted by name.\n\n"
   "      --json  print a JSON object {name: id}\n",
   {{'\0', "json", false}}, 0, 0, nullptr, RunNames},
  {"keygen", "keygen PATH [--endpoint ENDPOINT]",
   "make a CURVE key pair for a cluster node",
   "Write PATH.key (the secret key, mode 0600: give it to the node as\n"
   "curve_secret=) and PATH.pub (the public key and ENDPOINT: copy it into\n"
   "the curve_peers= directory of every node). Existing files are kept.\n"
   "Needs no mount.\n\n"
   "      --endpoint ENDPOINT  the node's listen= endpoint, recorded in PATH.pub\n"
   "                           so that its peers know which key is whose\n",
   {{'\0', "endpoint", true}}, 1, 1, nullptr, RunKeygen},
  {"status", "status [--json]",
   "summarize this node",
   "Summarize this node: arena usage (statfs) and status.json.\n\n"
   "      --json  print status.json as JSON\n",
   {{'\0', "json", false}}, 0, 0, nullptr, RunStatus},
};
// clang-format on

}  // namespace

const std::vector<Command>& Commands() { return kCommands; }

void PrintMainHelp() {
  std::cout << "Usage: vyctl [-m MOUNT] COMMAND [ARGS...]\n\n"
               "Command-line client of a vineyardfs mount; it works only through the\n"
               "filesystem.\n\nCommands:\n";
  constexpr size_t kColumn = 30;
  for (const Command& cmd : Commands()) {
    std::string usage = cmd.usage;
    std::cout << "  " << usage
              << (usage.size() < kColumn ? std::string(kColumn - usage.size(), ' ')
                                         : "\n" + std::string(kColumn + 2, ' '))
              << cmd.summary << '\n';
  }
  std::cout << "\nREF is an object id (o + 16 lowercase hex digits) or a name in MOUNT/names/.\n\n"
               "Options:\n"
               "  -m, --mount MOUNT  the mount point (default: $VINEYARDFS_MOUNT, else "
            << kDefaultMount
            << ")\n"
               "  -h, --help         show this help; 'vyctl COMMAND --help' for a command\n"
               "      --version      print the version\n\n"
               "Exit status: 0 success, 1 an operation failed (or no daemon serves the\n"
               "mount), 2 usage error, not a vineyardfs mount, or an invalid object id.\n";
}

void PrintCommandHelp(const Command& cmd) {
  std::cout << "Usage: vyctl [-m MOUNT] " << cmd.usage << "\n\n" << cmd.help;
  if (std::string(cmd.usage).find("REF") != std::string::npos) {
    std::cout << "\nREF is an object id (o + 16 lowercase hex digits) or a name.\n";
  }
}

const Command* FindCommand(const std::string& name) {
  for (const Command& cmd : Commands()) {
    if (name == cmd.name) return &cmd;
  }
  return nullptr;
}

// Checks the positional count (and the command's own checks).
bool CheckArgs(const Command& cmd, const Args& args, std::string* error) {
  size_t count = args.positional.size();
  if (count < cmd.min_args) {
    *error = "missing argument (usage: vyctl " + std::string(cmd.usage) + ")";
  } else if (count > cmd.max_args) {
    *error = "unexpected argument '" + args.positional[cmd.max_args] + "'";
  } else if (cmd.check != nullptr) {
    cmd.check(args, error);
  }
  return error->empty();
}

// Parses the options before COMMAND; *next is the index of COMMAND.

}  // namespace vyctl
