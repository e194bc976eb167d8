// Listings as tools read them: every directory lists "." and "..", and no entry carries a
// wrong d_type. The kernel asks READDIRPLUS for the first buffer of a listing and plain
// READDIR for the rest (FUSE_CAP_READDIRPLUS_AUTO), so a directory of a few hundred
// entries exercises both: os.walk and find trust a d_type that is not DT_UNKNOWN.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>

#include "mount_fixture.h"

namespace vyit {
namespace {

class Listing : public MountTest {
 protected:
  // name -> d_type of every entry readdir(3) returns, "." and ".." included.
  static std::map<std::string, unsigned char> Types(const std::string& dir) {
    std::map<std::string, unsigned char> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) out[e->d_name] = e->d_type;
    closedir(d);
    return out;
  }
  // Whether `type` (a d_type) agrees with what lstat says of `path`.
  static bool TypeAgrees(const std::string& path, unsigned char type) {
    if (type == DT_UNKNOWN) return true;  // the reader stats it
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return false;
    return IFTODT(st.st_mode) == type;
  }
};

TEST_F(Listing, EveryDirectoryListsItsDotEntriesAndNoEntryHasAWrongType) {
  constexpr int kBlobs = 300;  // more than READDIRPLUS's first buffer holds
  for (int i = 0; i < kBlobs; ++i) {
    ASSERT_TRUE(IsBlobId(WriteNew("b" + std::to_string(i) + ".blob", "x")));
  }
  for (const char* dir : {"objects", "new", "names", ""}) {
    auto types = Types(Path(dir));
    EXPECT_EQ(types.count("."), 1u) << dir;
    EXPECT_EQ(types.count(".."), 1u) << dir;
    for (auto& [name, type] : types) {
      if (name == "." || name == "..") continue;
      EXPECT_TRUE(TypeAgrees(Path(dir) + "/" + name, type))
          << dir << "/" << name << " listed with d_type " << int(type);
    }
  }
  auto objects = Types(Path("objects"));
  EXPECT_EQ(objects.size(), kBlobs + 2u);
  for (auto& [name, type] : objects) {
    EXPECT_TRUE(type == DT_DIR || type == DT_UNKNOWN) << name << ": " << int(type);
  }
  // The leftover links of new/ are links, none a directory (the first two were listed
  // as "." and ".." once).
  for (auto& [name, type] : Types(Path("new"))) {
    if (name == "." || name == "..") continue;
    EXPECT_NE(type, DT_DIR) << name;
  }
}

}  // namespace
}  // namespace vyit
