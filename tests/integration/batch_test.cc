// new/<x>.batch on a real mount (README "Many objects in one upload"): a whole
// composite value in one upload, created all or nothing — also across a kill -9 of
// the daemon in the middle of a batch.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "mount_fixture.h"

namespace vyit {
namespace {

using nlohmann::json;

// A manifest, a NUL, the payload.
std::string Batch(const json& manifest, const std::string& payload = "") {
  std::string out = manifest.dump();
  out.push_back('\0');
  return out + payload;
}

// A list of `n` Tensors<uint8> of `each` bytes; blob i holds bytes [i*each, (i+1)*each).
std::string ListOfTensors(size_t n, size_t each, std::string* payload) {
  *payload = RandomBytes(n * each, 7);
  json entries = json::array();
  json list = {{"typename", "vineyard::List"}, {"__elements_-size", n}};
  for (size_t i = 0; i < n; ++i) {
    entries.push_back({{"blob", {i * each, each}}});
    entries.push_back({{"meta",
                        {{"typename", "vineyard::Tensor<uint8>"},
                         {"shape_", "[" + std::to_string(each) + "]"},
                         {"buffer_", {{"id", "#" + std::to_string(2 * i)}}}}}});
    list["__elements_-" + std::to_string(i)] = {{"id", "#" + std::to_string(2 * i + 1)}};
  }
  entries.push_back({{"meta", list}});
  return Batch({{"entries", entries}}, *payload);
}

class BatchTest : public MountTest {
 protected:
  // Payload files in the arena (blobs/), whoever owns them.
  size_t ArenaBlobs() {
    size_t n = 0;
    for (auto& e : ListDir(arena() + "/blobs")) n += e[0] != '.';
    return n;
  }
};

TEST_F(BatchTest, CreatesAListOfTensorsInOneUpload) {
  std::string payload;
  std::string root = WriteNew("l.batch", ListOfTensors(3, 1000, &payload));
  ASSERT_TRUE(IsObjectId(root));
  json meta = ReadMeta(root);
  EXPECT_EQ(meta["typename"], "vineyard::List");
  EXPECT_EQ(meta["__elements_-size"], 3);
  EXPECT_EQ(meta["nbytes"], 3000);
  for (int i = 0; i < 3; ++i) {
    const json& t = meta["__elements_-" + std::to_string(i)];
    EXPECT_EQ(t["typename"], "vineyard::Tensor<uint8>");
    EXPECT_EQ(t["nbytes"], 1000);
    std::string blob = t["buffer_"]["id"];
    ASSERT_TRUE(IsBlobId(blob));
    EXPECT_EQ(ReadAll(ObjPath(blob, "data")), payload.substr(i * 1000, 1000)) << "blob " << i;
  }
  EXPECT_EQ(ReadStatus()["objects"]["total"], 7);
  // The same objects after a crash and a restart.
  Crash();
  ASSERT_TRUE(Remount());
  EXPECT_EQ(ReadMeta(root)["nbytes"], 3000);
  EXPECT_EQ(ReadStatus()["objects"]["total"], 7);
}

TEST_F(BatchTest, MembersMayBeExistingObjectsAndRangesMayOverlap) {
  std::string old_blob = WriteNew("old.blob", "existing");
  ASSERT_TRUE(IsBlobId(old_blob));
  json m = {{"entries",
             {{{"blob", {0, 4}}},
              {{"blob", {2, 4}}},
              {{"meta",
                {{"typename", "vineyard::Tuple"},
                 {"a", {{"id", "#0"}}},
                 {"b", {{"id", "#1"}}},
                 {"c", {{"id", old_blob}}},
                 {"note", "#9 is a plain string here"}}}}}},
            {"root", 2}};
  std::string root = WriteNew("t.batch", Batch(m, "abcdef"));
  ASSERT_TRUE(IsObjectId(root));
  json meta = ReadMeta(root);
  EXPECT_EQ(ReadAll(ObjPath(meta["a"]["id"], "data")), "abcd");
  EXPECT_EQ(ReadAll(ObjPath(meta["b"]["id"], "data")), "cdef");
  EXPECT_EQ(meta["c"]["id"], old_blob);
  EXPECT_EQ(meta["note"], "#9 is a plain string here");
  EXPECT_EQ(meta["nbytes"], 16);
}

// A persisted root persists what it reaches, inside the batch and outside it.
TEST_F(BatchTest, APersistedRootPersistsTheWholeBatch) {
  std::string old_blob = WriteNew("old.blob", "old");
  ASSERT_TRUE(IsBlobId(old_blob));
  json m = {{"entries",
             {{{"blob", {0, 2}}},
              {{"meta", {{"typename", "x::Inner"}, {"b", {{"id", "#0"}}}}}},
              {{"meta",
                {{"typename", "x::Outer"},
                 {"transient", false},
                 {"i", {{"id", "#1"}}},
                 {"o", {{"id", old_blob}}}}}}}}};
  std::string root = WriteNew("p.batch", Batch(m, "ab"));
  ASSERT_TRUE(IsObjectId(root));
  json meta = ReadMeta(root);
  EXPECT_EQ(meta["transient"], false);
  EXPECT_EQ(meta["i"]["transient"], false);
  EXPECT_EQ(meta["i"]["b"]["transient"], false);
  EXPECT_EQ(meta["o"]["transient"], false);
  EXPECT_EQ(ReadStatus()["objects"]["persisted"], 4);
}

TEST_F(BatchTest, AManifestWithoutPayloadNeedsNoNul) {
  std::string root = WriteNew("m.batch", R"({"entries": [{"meta": {"typename": "x::A"}},
      {"meta": {"typename": "x::B", "a_": {"id": "#0"}}}]})");
  ASSERT_TRUE(IsObjectId(root));
  EXPECT_EQ(ReadMeta(root)["a_"]["typename"], "x::A");
}

// Each invalid batch: close() (or the seal) fails with the errno, new/<x>.error says
// why, and nothing at all is created.
TEST_F(BatchTest, AnInvalidBatchCreatesNothing) {
  std::string existing = WriteNew("e.blob", "e");
  ASSERT_TRUE(IsBlobId(existing));
  const json blob0 = {{"blob", {0, 1}}};
  auto meta = [](const json& fields) { return json{{"meta", fields}}; };
  struct Case {
    const char* what;
    std::string bytes;
    int err;
    const char* reason;
  };
  std::vector<Case> cases = {
      {"not JSON", std::string("{\"entries\": [") + '\0' + "a", EINVAL, "invalid JSON"},
      {"not an object", Batch(json::array()), EINVAL, "must be a JSON object"},
      {"no entries", Batch({{"entries", json::array()}}), EINVAL, "non-empty array"},
      {"unknown key", Batch({{"entries", {blob0}}, {"x", 1}}, "a"), EINVAL, "unknown key 'x'"},
      {"two forms", Batch({{"entries", {{{"blob", {0, 1}}, {"meta", {{"typename", "a"}}}}}}}, "a"),
       EINVAL, "must be {\"blob\""},
      {"bad range", Batch({{"entries", {{{"blob", {0, -1}}}}}}, "a"), EINVAL, "[offset, size]"},
      {"range outside", Batch({{"entries", {{{"blob", {1, 1}}}}}}, "a"), EINVAL,
       "outside the payload"},
      {"forward reference",
       Batch({{"entries", {meta({{"typename", "a"}, {"m", {{"id", "#1"}}}}), blob0}},
              {"root", 0}},
             "a"),
       EINVAL, "not an earlier entry"},
      {"self reference", Batch({{"entries", {meta({{"typename", "a"}, {"m", {{"id", "#0"}}}})}}}),
       EINVAL, "not an earlier entry"},
      {"malformed reference",
       Batch({{"entries", {blob0, meta({{"typename", "a"}, {"m", {{"id", "#01"}}}})}}}, "a"),
       EINVAL, "neither an object id"},
      {"unreachable entry", Batch({{"entries", {blob0, blob0, meta({{"typename", "a"},
                                                                     {"m", {{"id", "#1"}}}})}}},
                                  "a"),
       EINVAL, "entry 0 is not reached from the root"},
      {"bad root", Batch({{"entries", {blob0}}, {"root", 1}}, "a"), EINVAL, "\"root\""},
      {"create-form rule", Batch({{"entries", {blob0, meta({{"typename", "a"}, {"id", "x"},
                                                             {"m", {{"id", "#0"}}}})}}},
                                 "a"),
       EINVAL, "batch entry 1: field 'id' is set by the store"},
      {"missing member",
       Batch({{"entries",
               {blob0, meta({{"typename", "a"}, {"m", {{"id", "#0"}}},
                             {"gone", {{"id", "o0001000000099999"}}}})}}},
             "a"),
       ENOENT, "member 'gone': object o0001000000099999 does not exist"},
  };
  json many = json::array();
  for (size_t i = 0; i <= 100000; ++i) many.push_back({{"blob", {0, 0}}});
  cases.push_back({"too many entries", Batch({{"entries", many}}), EFBIG, "over the limit"});

  Snapshot before = TakeSnapshot();
  const size_t arena_files = ArenaBlobs();
  int n = 0;
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string name = "bad" + std::to_string(n++) + ".batch";
    int err = TryWriteNew(name, c.bytes);
    EXPECT_EQ(err, c.err) << strerror(err);
    std::string reason = ReadAll(Path("new/" + name + ".error"));
    EXPECT_NE(reason.find(c.reason), std::string::npos) << reason;
    ASSERT_EQ(unlink(Path("new/" + name).c_str()), 0);
  }
  ExpectUntouched(before);
  EXPECT_EQ(ArenaBlobs(), arena_files) << "a refused batch left payloads";
}

// The all-or-nothing rule across a crash: the daemon kills itself (SIGKILL) after
// half of the batch's blobs are in the arena, before the commit. After a restart on
// the same state and arena none of the batch exists and its payloads are gone.
TEST_F(BatchTest, AKillInTheMiddleOfABatchLeavesNothing) {
  std::string keep = WriteNew("keep.blob", "keep");
  ASSERT_TRUE(IsBlobId(keep));
  Unmount();
  setenv("VINEYARDFS_TEST_KILL_IN_BATCH", "50", 1);
  bool mounted = Remount();
  unsetenv("VINEYARDFS_TEST_KILL_IN_BATCH");
  ASSERT_TRUE(mounted);
  std::string payload;
  const std::string bytes = ListOfTensors(100, 4096, &payload);
  int fd = open(Path("new/k.batch").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);  // the seal follows the release; the daemon dies in it
  ReadLink(Path("new/k.batch"));  // waits for the seal, which kills the daemon
  Crash();
  EXPECT_EQ(ArenaBlobs(), 1u + 50u) << "the crash came before 50 of the batch's blobs were made";
  ASSERT_TRUE(Remount());
  json status = ReadStatus();
  EXPECT_EQ(status["objects"]["total"], 1) << status.dump();
  EXPECT_EQ(ListDir(Path("objects")), std::vector<std::string>{keep});
  EXPECT_EQ(ArenaBlobs(), 1u) << "the batch's payloads were not removed";
  EXPECT_EQ(ReadAll(ObjPath(keep, "data")), "keep");
  // And the same batch succeeds now, whole.
  std::string root = WriteNew("k2.batch", bytes);
  ASSERT_TRUE(IsObjectId(root));
  EXPECT_EQ(ReadStatus()["objects"]["total"], 202);
}

// A kill -9 from outside at an arbitrary moment of a large batch's seal: after the
// restart the batch is there whole or not at all, and the arena holds no payload
// that no object owns.
TEST_F(BatchTest, AKillAtAnyMomentShowsAllOrNothing) {
  std::string payload;
  const std::string bytes = ListOfTensors(1000, 16384, &payload);
  for (int delay_us : {0, 2000, 8000, 30000}) {
    SCOPED_TRACE(delay_us);
    const size_t objects_before = ReadStatus()["objects"]["total"];
    const std::string name = "r" + std::to_string(delay_us) + ".batch";
    int fd = open(Path("new/" + name).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
    usleep(delay_us);
    Crash();
    ASSERT_TRUE(Remount());
    const size_t objects_after = ReadStatus()["objects"]["total"];
    EXPECT_TRUE(objects_after == objects_before || objects_after == objects_before + 2001)
        << objects_before << " -> " << objects_after;
    EXPECT_EQ(ArenaBlobs(), ReadStatus()["objects"]["blobs"].get<size_t>());
  }
}

}  // namespace
}  // namespace vyit
