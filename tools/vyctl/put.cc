// put: creating objects by writing files into MOUNT/new/ (DESIGN.md §4).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include "tools/vyctl/vyctl.h"

namespace vyctl {

namespace {

// The name of the file that `put` writes in new/: vyctl-<pid>-<counter>-<base>.
// It keeps the tail of the source's name, since the daemon and its builder
// plugins recognize uploads by suffix (".meta.json", ".npy", ...).
// `suffix`: what the upload's name must end with (".meta.json", ".batch"; "" for none).
std::string UploadName(const std::string& file, const std::string& suffix, unsigned counter) {
  std::string base = file == "-" ? "stdin" : LastComponent(file);
  if (base.empty() || base == "." || base == ".." || base == "/") base = "file";
  if (!suffix.empty() && !EndsWith(base, suffix)) base += suffix;
  std::string prefix = "vyctl-" + std::to_string(getpid()) + "-" + std::to_string(counter) + "-";
  if (prefix.size() + base.size() > kNameMax) base.erase(0, prefix.size() + base.size() - kNameMax);
  return prefix + base;
}

// Copies src_fd into a new file in new/ and closes it, which seals it. On
// success *upload is the path of the new/ entry. Reports failures itself.
ExitCode Upload(const Mount& m, int src_fd, const std::string& file, const std::string& suffix,
                std::string* upload) {
  const std::string label = "put " + file;
  int fd = -1;
  for (unsigned counter = 1; fd < 0; ++counter) {
    *upload = m.Path("new/" + UploadName(file, suffix, counter));
    fd = open(upload->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && (errno != EEXIST || counter == 100)) {
      PrintError(label + ": creating " + *upload + ": " + ErrnoText(errno));
      return kFailed;
    }
  }
  bool write_failed = false;
  if (int err = CopyFd(src_fd, fd, &write_failed)) {
    // Unlink before close: closing would seal the partial copy as an object.
    unlink(upload->c_str());
    close(fd);
    PrintError(label + ": " + (write_failed ? "writing " + *upload : "reading") + ": " +
               ErrnoText(err));
    return kFailed;
  }
  if (close(fd) != 0) {
    int err = errno;
    std::string reason;
    std::string message = label + ": " + ErrnoText(err);
    if (GetXattr(*upload, "user.vineyard.error", &reason) == 0 && !reason.empty()) {
      message += ": " + reason;
    }
    PrintError(message);
    PrintError(label + ": what was written is kept in " + *upload);
    return kFailed;
  }
  return kOk;
}

// Reads the id of a sealed upload from its new/ link. The daemon answers the lookup
// only once the seal that our close() started is done; a seal that failed after
// close() (DESIGN.md §4) left its reason in the upload's xattrs.
ExitCode ReadSealedId(const std::string& upload, const std::string& label, std::string* id) {
  std::string target;
  int err = ReadLink(upload, &target);
  if (err == 0) {
    *id = LastComponent(target);
    if (IsObjectId(*id)) return kOk;
    PrintError(label + ": " + upload + " points to '" + target + "', not to an object");
    return kFailed;
  }
  std::string reason, code;
  if (GetXattr(upload, "user.vineyard.error", &reason) == 0 && !reason.empty()) {
    GetXattr(upload, "user.vineyard.errno", &code);
    PrintError(label + ": " + (code.empty() ? "the seal failed" : code) + ": " + reason);
    PrintError(label + ": what was written is kept in " + upload);
    return kFailed;
  }
  PrintError(label + ": " + upload + " was closed but did not become a link to an object (" +
             ErrnoText(err) + ")");
  return kFailed;
}

}  // namespace

// put FILE|- [--name NAME] [--persist] [--meta | --batch]
ExitCode RunPut(const Mount& m, const Args& args) {
  const std::string& file = args.positional[0];
  const std::string label = "put " + file;
  const bool named = args.Has("name");
  const std::string name = args.Value("name");
  if (named && !NewNameProblem(name).empty()) return UsageError("put", NewNameProblem(name));
  if (args.Has("meta") && args.Has("batch")) return UsageError("put", "--meta or --batch, not both");
  if (named && Exists(m.Name(name))) {
    PrintError(label + ": name '" + name + "' already exists");
    return kFailed;
  }
  int src_fd = file == "-" ? STDIN_FILENO : open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (src_fd < 0) {
    PrintError(label + ": " + ErrnoText(errno));
    return kFailed;
  }
  struct stat st;
  if (fstat(src_fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    PrintError(label + ": " + ErrnoText(EISDIR));
    if (src_fd != STDIN_FILENO) close(src_fd);
    return kFailed;
  }
  std::string upload;
  const std::string suffix = args.Has("meta") ? kMetaSuffix : args.Has("batch") ? ".batch" : "";
  ExitCode code = Upload(m, src_fd, file, suffix, &upload);
  if (src_fd != STDIN_FILENO) close(src_fd);
  std::string id;
  if (code == kOk) code = ReadSealedId(upload, label, &id);
  if (code != kOk) return code;

  std::cout << id << '\n' << std::flush;
  if (unlink(upload.c_str()) != 0) {
    PrintError("warning: " + label + ": removing the link " + upload + ": " + ErrnoText(errno));
  }
  if (args.Has("persist")) {
    if (int err = SetXattr(m.Object(id), "user.vineyard.persist", "1")) {
      PrintError(label + ": persisting " + id + ": " + ErrnoText(err));
      code = kFailed;
    }
  }
  if (named) {
    if (int err = LinkName(m, id, name, false)) {
      PrintError(label + ": naming " + id + " '" + name + "': " + ErrnoText(err));
      code = kFailed;
    }
  }
  return code;
}

}  // namespace vyctl
