// The ownership rule across two real nodes (README "Ownership"): a global object on
// one node holding another owner's persisted object from the other node does not
// pin it there — its owner's rmdir wins and the delete reaches both nodes, where the
// holder shows the member as gone — while one owner's own references still pin.
// Other users are forked children that setuid.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

#include "cluster_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

constexpr uid_t kAlice = 1001;

// Runs fn in a child as `uid`; its result (an errno, 0 for success), -1 if it died.
int RunAs(uid_t uid, const std::function<int()>& fn) {
  pid_t pid = ForkOutsideUploads();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(255);
    _exit(fn() & 0xff);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 255) return -1;
  return WEXITSTATUS(st);
}

class ClusterOwnership : public ClusterTest {
 protected:
  int NodeCount() const override { return 2; }

  // As `uid` on node `i`: a blob, persisted. Returns its id ("" on failure).
  std::string PersistedBlobAs(uid_t uid, int i, const std::string& name) {
    const std::string path = node(i).Path("new/" + name);
    int rc = RunAs(uid, [&] {
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) return errno;
      if (write(fd, name.data(), name.size()) != static_cast<ssize_t>(name.size()) ||
          close(fd) != 0) {
        return errno;
      }
      std::string target = ReadLinkOf(path);
      std::string obj = node(i).Path("new/" + target);
      return setxattr(obj.c_str(), "user.vineyard.persist", "1", 1, 0) == 0 ? 0 : errno;
    });
    EXPECT_EQ(rc, 0) << name;
    std::string link = ReadLinkOf(path);
    return link.size() > 17 ? link.substr(link.size() - 17) : "";
  }
  int RmdirAs(uid_t uid, int i, const std::string& id) {
    const std::string path = node(i).ObjPath(id);
    return RunAs(uid, [&] { return rmdir(path.c_str()) == 0 ? 0 : errno; });
  }
  std::string Global(int i, const std::string& name, const std::string& member) {
    return node(i).WriteMeta(name,
                             R"({"typename":"t","global":true,"m":{"id":")" + member + "\"}}");
  }
};

TEST_F(ClusterOwnership, ARemoteHolderOfAnotherOwnersObjectDoesNotPinIt) {
  const std::string blob = PersistedBlobAs(kAlice, 2, "alice.blob");
  ASSERT_TRUE(IsBlobId(blob));
  ASSERT_TRUE(WaitListed(1, blob));
  const std::string g = Global(1, "g", blob);  // root's, on node 1
  ASSERT_TRUE(IsObjectId(g));
  ASSERT_TRUE(WaitListed(2, g));
  EXPECT_EQ(RmdirAs(kAlice, 2, blob), 0) << "root's global object on node 1 pinned Alice's blob";
  EXPECT_TRUE(WaitGone(1, blob)) << "the delete did not reach node 1";
  for (int i : {1, 2}) {
    SCOPED_TRACE("node " + std::to_string(i));
    EXPECT_EQ(ReadLinkOf(node(i).ObjPath(g, "members/m")), "../../" + blob);
    struct stat sb;
    EXPECT_EQ(stat(node(i).ObjPath(g, "members/m").c_str(), &sb), -1);
    json m = json::parse(node(i).Meta(g), nullptr, false);
    ASSERT_TRUE(m.is_object());
    EXPECT_EQ(m["m"]["id"], blob);
    // Made on node 2: there it is known to be deleted; node 1 only knows it is gone.
    EXPECT_EQ(m["m"]["error"], i == 2 ? "deleted" : "missing") << m.dump();
  }
  // The holder is still its owner's to delete, everywhere.
  EXPECT_EQ(rmdir(node(1).ObjPath(g).c_str()), 0) << strerror(errno);
  EXPECT_TRUE(WaitGone(2, g));
}

TEST_F(ClusterOwnership, OneOwnersRemoteHolderStillPins) {
  const std::string blob = node(2).WritePersisted("root.blob", "root's bytes");
  ASSERT_TRUE(IsBlobId(blob));
  ASSERT_TRUE(WaitListed(1, blob));
  const std::string g = Global(1, "g", blob);
  ASSERT_TRUE(IsObjectId(g));
  ASSERT_TRUE(WaitListed(2, g));
  EXPECT_EQ(rmdir(node(2).ObjPath(blob).c_str()), -1);
  EXPECT_EQ(errno, EBUSY);
  EXPECT_EQ(rmdir(node(1).ObjPath(g).c_str()), 0) << strerror(errno);
  ASSERT_TRUE(WaitGone(2, g));
  EXPECT_EQ(rmdir(node(2).ObjPath(blob).c_str()), 0) << strerror(errno);
  EXPECT_TRUE(WaitGone(1, blob));
}

}  // namespace
}  // namespace vyit
