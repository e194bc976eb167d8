// The ownership rule (README "Ownership", meta/object_table.h) on a real mount, with
// other users played by forked children that setuid (RunAs): a reference to another
// owner's object is allowed and weak — it never persists the member for its owner,
// never keeps the owner (or root) from deleting it, and a delete's cascade never takes
// it — while one owner's own references still pin (EBUSY), as in Vineyard.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

constexpr uid_t kRoot = 0;
constexpr uid_t kNobody = 65534;
constexpr uid_t kAlice = 1001;
constexpr uid_t kBob = 1002;

class Ownership : public MountTest {
 protected:
  // As `uid`: writes new/<name> and closes it. Returns the errno of the first failing
  // step (0: sealed) and the new id in *id.
  int WriteAs(uid_t uid, const std::string& name, const std::string& bytes,
              std::string* id = nullptr) {
    const std::string path = Path("new/" + name);
    int rc = RunAs(uid, [&] {
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) return errno;
      if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        int e = errno;
        close(fd);
        return e;
      }
      return close(fd) == 0 ? 0 : errno;
    });
    if (rc == 0) rc = SealErrno(path);  // a seal that failed after close()
    if (id) *id = rc == 0 ? LinkedId("new/" + name) : "";
    return rc;
  }
  std::string BlobAs(uid_t uid, const std::string& name) {
    std::string id;
    EXPECT_EQ(WriteAs(uid, name, "bytes of " + name, &id), 0) << name;
    EXPECT_TRUE(IsBlobId(id)) << name;
    return id;
  }
  static std::string Container(const std::string& member, const std::string& extra = "") {
    return R"({"typename":"t","m":{"id":")" + member + "\"}" + extra + "}";
  }
  std::string ContainerAs(uid_t uid, const std::string& name, const std::string& member,
                          const std::string& extra = "") {
    std::string id;
    EXPECT_EQ(WriteAs(uid, name + ".meta.json", Container(member, extra), &id), 0) << name;
    EXPECT_TRUE(IsObjectId(id)) << name;
    return id;
  }
  int RmdirAs(uid_t uid, const std::string& id) {
    const std::string path = ObjPath(id);
    return RunAs(uid, [&] { return rmdir(path.c_str()) == 0 ? 0 : errno; });
  }
  int PersistAs(uid_t uid, const std::string& id) {
    const std::string path = ObjPath(id);
    return RunAs(uid, [&] {
      return setxattr(path.c_str(), "user.vineyard.persist", "1", 1, 0) == 0 ? 0 : errno;
    });
  }
  std::string Xattr(const std::string& path, const std::string& key) {
    char buf[4096];
    ssize_t n = getxattr(path.c_str(), key.c_str(), buf, sizeof buf);
    return n < 0 ? "<" + std::string(strerror(errno)) + ">" : std::string(buf, n);
  }
  std::string Persisted(const std::string& id) {
    return Xattr(ObjPath(id), "user.vineyard.persist");
  }
  bool Exists(const std::string& id) {
    struct stat sb;
    return stat(ObjPath(id).c_str(), &sb) == 0;
  }
  // members/m of `holder` is a link to `member` that no longer resolves, and meta.json
  // says the member was deleted.
  void ExpectMemberDeleted(const std::string& holder, const std::string& member) {
    EXPECT_EQ(ReadLink(ObjPath(holder, "members/m")), "../../" + member);
    struct stat sb;
    EXPECT_EQ(stat(ObjPath(holder, "members/m").c_str(), &sb), -1);
    EXPECT_EQ(errno, ENOENT);
    auto meta = ReadMeta(holder);
    EXPECT_EQ(meta["m"], (nlohmann::json{{"id", member}, {"error", "deleted"}})) << meta.dump();
  }
};

TEST_F(Ownership, UserCannotPersistRootsBlobThroughAContainer) {
  const std::string blob = BlobAs(kRoot, "root.blob");
  EXPECT_EQ(PersistAs(kNobody, blob), EACCES);  // directly: the kernel refuses
  for (const char* extra : {R"(,"transient":false)", R"(,"global":true)"}) {
    SCOPED_TRACE(extra);
    const std::string name = std::string("c") + (extra[3] == 't' ? "t" : "g") + ".meta.json";
    EXPECT_EQ(WriteAs(kNobody, name, Container(blob, extra)), EACCES);
    std::string why = Xattr(Path("new/" + name), "user.vineyard.error");
    EXPECT_NE(why.find("belongs to uid 0 and is not persisted"), std::string::npos) << why;
    EXPECT_EQ(Persisted(blob), "0") << "the refused container persisted root's blob";
  }
  // Through a nested container of its own, too.
  const std::string inner = ContainerAs(kNobody, "inner", blob);
  EXPECT_EQ(WriteAs(kNobody, "outer.meta.json",
                    R"({"typename":"t","m":{"id":")" + inner + R"("},"transient":false})"),
            EACCES);
  EXPECT_NE(Xattr(Path("new/outer.meta.json"), "user.vineyard.error")
                .find("member 'm' holds " + blob + " belongs to uid 0"),
            std::string::npos);
  EXPECT_EQ(Persisted(inner), "0");
  EXPECT_EQ(Persisted(blob), "0");
  // Persisting its own container later is refused the same way, and changes nothing.
  EXPECT_EQ(PersistAs(kNobody, inner), EACCES);
  EXPECT_EQ(Persisted(inner), "0");
  EXPECT_EQ(Persisted(blob), "0");
  // Sharing by reference is fine: root deletes its blob anyway (no EBUSY), and the
  // container shows the member as deleted.
  EXPECT_EQ(RmdirAs(kRoot, blob), 0);
  EXPECT_FALSE(Exists(blob));
  ExpectMemberDeleted(inner, blob);
  // Its owner can still delete the container.
  EXPECT_EQ(RmdirAs(kNobody, inner), 0);
}

TEST_F(Ownership, PersistedMembersOfOthersMayBeHeldByPersistedContainers) {
  const std::string blob = BlobAs(kRoot, "root.blob");
  ASSERT_EQ(PersistAs(kRoot, blob), 0);
  const std::string c = ContainerAs(kNobody, "c", blob, R"(,"transient":false)");
  EXPECT_EQ(Persisted(c), "1");
  // Still a weak reference: root's delete wins.
  EXPECT_EQ(RmdirAs(kRoot, blob), 0);
  ExpectMemberDeleted(c, blob);
  EXPECT_EQ(RmdirAs(kNobody, c), 0);
}

TEST_F(Ownership, RootMayPersistAUsersBlobAndTheUserMayStillDeleteIt) {
  const std::string blob = BlobAs(kAlice, "alice.blob");
  const std::string c = ContainerAs(kRoot, "c", blob, R"(,"transient":false)");
  EXPECT_EQ(Persisted(blob), "1");
  EXPECT_EQ(RmdirAs(kAlice, blob), 0);
  ExpectMemberDeleted(c, blob);
}

TEST_F(Ownership, OwnerOfAMemberDeletesItUnderAnotherUsersContainer) {
  const std::string blob = BlobAs(kAlice, "alice.blob");
  const std::string c = ContainerAs(kBob, "bob", blob);
  // Bob may not delete Alice's blob (sticky objects/), Alice may not delete Bob's
  // container: neither needs to.
  EXPECT_EQ(RmdirAs(kBob, blob), EPERM);
  EXPECT_EQ(RmdirAs(kAlice, c), EPERM);
  EXPECT_EQ(RmdirAs(kAlice, blob), 0);
  ExpectMemberDeleted(c, blob);
  // A deleted member's holder stays usable and deletable, and nothing is left over.
  EXPECT_EQ(ListDir(ObjPath(c, "members")), std::vector<std::string>{"m"});
  EXPECT_EQ(RmdirAs(kBob, c), 0);
  EXPECT_TRUE(ListDir(Path("objects")).empty());
  // The counts survive a restart: the deleted member is not reported lost.
  Unmount();
  ASSERT_TRUE(Remount());
}

TEST_F(Ownership, DeletingAContainerNeverTakesAnotherOwnersMember) {
  const std::string blob = BlobAs(kAlice, "alice.blob");
  const std::string c = ContainerAs(kBob, "bob", blob);
  // Bob's delete cascades over his own unreferenced, unnamed members only.
  EXPECT_EQ(RmdirAs(kBob, c), 0);
  EXPECT_TRUE(Exists(blob)) << "Bob's delete took Alice's blob with it";
  EXPECT_EQ(ReadAll(ObjPath(blob, "data")), "bytes of alice.blob");
}

TEST_F(Ownership, OneOwnersOwnReferencesStillPin) {
  const std::string blob = BlobAs(kAlice, "alice.blob");
  const std::string c = ContainerAs(kAlice, "c", blob);
  const std::string weak = ContainerAs(kBob, "weak", blob);
  EXPECT_EQ(RmdirAs(kAlice, blob), EBUSY);
  EXPECT_EQ(RmdirAs(kRoot, blob), EBUSY);  // root too: the Vineyard rule
  // Alice's container goes and takes her blob with it (Bob's reference is weak).
  EXPECT_EQ(RmdirAs(kAlice, c), 0);
  EXPECT_FALSE(Exists(blob));
  ExpectMemberDeleted(weak, blob);
  // Root's objects follow the same rule.
  const std::string rb = BlobAs(kRoot, "root.blob");
  const std::string rc = ContainerAs(kRoot, "rc", rb);
  EXPECT_EQ(RmdirAs(kRoot, rb), EBUSY);
  EXPECT_EQ(RmdirAs(kRoot, rc), 0);
  EXPECT_FALSE(Exists(rb));
}

}  // namespace
}  // namespace vyit
