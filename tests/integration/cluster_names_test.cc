// Cluster tests (DESIGN.md §7) on three real daemons: names put, dropped and renamed
// everywhere, last-writer-wins names, and global objects with members on other nodes.
#include "cluster_test_helpers.h"

namespace vyit {
namespace {

TEST_F(Cluster, NamesArePutDroppedAndRenamedEverywhere) {
  const std::string a = node(1).WritePersisted("a", "payload a");
  ASSERT_TRUE(IsBlobId(a));
  for (int i : {2, 3}) ASSERT_TRUE(WaitListed(i, a));

  ASSERT_EQ(symlink(("../objects/" + a).c_str(), node(1).Path("names/foo").c_str()), 0)
      << strerror(errno);
  for (int i : {2, 3}) EXPECT_TRUE(WaitName(i, "foo", a)) << "put, node " << i;

  ASSERT_EQ(rename(node(1).Path("names/foo").c_str(), node(1).Path("names/bar").c_str()), 0)
      << strerror(errno);
  for (int i : {2, 3}) {
    EXPECT_TRUE(WaitName(i, "bar", a)) << "rename, node " << i;
    EXPECT_TRUE(WaitName(i, "foo", "")) << "rename, node " << i;
  }

  // Names are cluster-wide: another node than the writer drops it for everyone.
  ASSERT_EQ(unlink(node(3).Path("names/bar").c_str()), 0) << strerror(errno);
  for (int i : {1, 2}) EXPECT_TRUE(WaitName(i, "bar", "")) << "drop, node " << i;

  // A bare id as the target, put on node 2.
  ASSERT_EQ(symlink(a.c_str(), node(2).Path("names/baz").c_str()), 0) << strerror(errno);
  for (int i : {1, 3}) EXPECT_TRUE(WaitName(i, "baz", a)) << "bare id, node " << i;

  // A name on a transient object stays on its node. The later name on a persisted
  // object is the barrier: updates of one origin arrive in order.
  const std::string t = node(1).WriteNew("t", "transient");
  ASSERT_TRUE(IsBlobId(t));
  ASSERT_EQ(symlink(("../objects/" + t).c_str(), node(1).Path("names/local").c_str()), 0);
  ASSERT_EQ(symlink(("../objects/" + a).c_str(), node(1).Path("names/barrier").c_str()), 0);
  for (int i : {2, 3}) {
    EXPECT_TRUE(WaitName(i, "barrier", a)) << "node " << i;
    EXPECT_FALSE(Contains(node(i).ListNames(), "local")) << "node " << i;
  }
  for (int i : {2, 3}) {
    EXPECT_EQ(node(i).Names(), (std::map<std::string, std::string>{{"barrier", a}, {"baz", a}}))
        << "node " << i;
  }
  EXPECT_EQ(node(1).Names(),
            (std::map<std::string, std::string>{{"barrier", a}, {"baz", a}, {"local", t}}));
}

// Puts `id` as names/<name> on node n, replacing what is there (rename over it).
void PutName(Node& n, const std::string& name, const std::string& id) {
  const std::string tmp = n.Path("names/.put-" + name);
  ASSERT_EQ(symlink(("../objects/" + id).c_str(), tmp.c_str()), 0) << strerror(errno);
  ASSERT_EQ(rename(tmp.c_str(), n.Path("names/" + name).c_str()), 0) << strerror(errno);
}

TEST_F(Cluster, ConcurrentPutsOfOneNameResolveToTheLastWriterEverywhere) {
  const std::string a = node(1).WritePersisted("a", "from node 1");
  const std::string b = node(2).WritePersisted("b", "from node 2");
  ASSERT_TRUE(IsBlobId(a) && IsBlobId(b));
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(WaitListed(i, a));
    ASSERT_TRUE(WaitListed(i, b));
  }
  // Node 1 then at once node 2, without waiting for node 1's put to arrive: node 2's
  // put is the later one by (timestamp, writer) whether or not it had arrived.
  ASSERT_EQ(symlink(("../objects/" + a).c_str(), node(1).Path("names/shared").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(PutName(node(2), "shared", b));
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(WaitName(i, "shared", b)) << "node " << i;
  // Still so once everything settled (a late arrival of node 1's put must lose).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(node(i).NameTarget("shared"), b) << "node " << i;

  // And back: a later put on node 1 wins everywhere.
  ASSERT_NO_FATAL_FAILURE(PutName(node(1), "shared", a));
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(WaitName(i, "shared", a)) << "node " << i;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(node(i).Names(), (std::map<std::string, std::string>{{"shared", a}})) << "node " << i;
  }
}

TEST_F(Cluster, GlobalObjectsMayHaveMembersOnOtherNodesNonGlobalOnesMayNot) {
  const std::string b2 = node(2).WritePersisted("b2", RandomBytes(3000, 1));
  const std::string b1 = node(1).WriteNew("b1", RandomBytes(5000, 2));
  ASSERT_TRUE(IsBlobId(b2) && IsBlobId(b1));
  ASSERT_TRUE(WaitListed(1, b2));

  const std::string g =
      node(1).WriteMeta("g", R"({"typename":"vineyard::Pair","global":true,"first_":{"id":")" + b2 +
                                 R"("},"second_":{"id":")" + b1 + "\"}}");
  ASSERT_TRUE(IsObjectId(g));
  json m = json::parse(node(1).Meta(g), nullptr, false);
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m["global"], true) << m.dump();
  EXPECT_EQ(m["transient"], false) << "a global object is persisted from the start";
  EXPECT_EQ(m["nbytes"], 8000) << "nbytes counts the remote member";
  EXPECT_EQ(m["first_"]["id"], b2) << m.dump();
  for (int i : {2, 3}) {
    SCOPED_TRACE("node " + std::to_string(i));
    ASSERT_TRUE(WaitListed(i, g));
    ASSERT_TRUE(WaitListed(i, b1)) << "the local member is persisted with it";
    EXPECT_EQ(node(i).Meta(g), node(1).Meta(g));
    EXPECT_EQ(ReadLinkOf(node(i).ObjPath(g, "members/first_")), "../../" + b2);
    EXPECT_EQ(ReadLinkOf(node(i).ObjPath(g, "members/second_")), "../../" + b1);
  }

  // Not global: a member on another node is refused at close(), the file stays.
  std::string id;
  EXPECT_EQ(node(1).TryWriteNew("ng.meta.json", PairJson(b2, b1), &id), EINVAL);
  int err = 0;
  std::string why = GetXattr(node(1).Path("new/ng.meta.json"), "user.vineyard.error", &err);
  EXPECT_EQ(err, 0) << strerror(err);
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(ReadFileOr(node(1).Path("new/ng.meta.json")), PairJson(b2, b1));
}

}  // namespace
}  // namespace vyit
