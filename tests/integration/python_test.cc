// Another language over the mount: /usr/bin/python3 maps a blob written from C++
// with numpy.memmap (DESIGN.md: "any program in any language shares data ... by
// opening and mmap-ing plain files").
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace vyit {
namespace {

const char kPython[] = "/usr/bin/python3";
const char kScript[] = TESTS_SOURCE_DIR "/integration/numpy_memmap_check.py";

class Python : public MountTest {
 protected:
  void SetUp() override {
    CommandResult r = RunCommand({kPython, "-c", "import numpy"});
    if (r.exit_code != 0) GTEST_SKIP() << kPython << " has no numpy: " << r.output;
    MountTest::SetUp();
  }

  static std::string Doubles(size_t n) {
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) * 0.5 - 3.25;
    return std::string(reinterpret_cast<const char*>(v.data()), n * sizeof(double));
  }
};

TEST_F(Python, NumpyMemmapsABlobWrittenFromCpp) {
  const size_t n = (1u << 20) + 5;  // 8 MiB + 40 bytes: not a multiple of the page size
  std::string id = WriteNew("floats", Doubles(n));
  ASSERT_TRUE(IsBlobId(id));
  CommandResult r = RunCommand({kPython, kScript, ObjPath(id, "data"), std::to_string(n)}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok " + std::to_string(n)), std::string::npos) << r.output;
}

TEST_F(Python, NumpyMemmapsAnMmapWrittenBlobThroughAName) {
  const size_t n = 1000;
  std::string id = WriteNewMmap("mapped", Doubles(n));
  ASSERT_TRUE(IsBlobId(id));
  ASSERT_EQ(symlink(id.c_str(), Path("names/floats").c_str()), 0) << strerror(errno);
  CommandResult r =
      RunCommand({kPython, kScript, Path("names/floats/data"), std::to_string(n)}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace vyit
