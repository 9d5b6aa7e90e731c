// The op table itself: every op in tests/op_table.json has a C++ runner and every runner has a
// case, so adding an op to one side only fails here. (The golden side is checked by
// OpTableGoldenFiles.OneFilePerGoldenCase.)
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "op_table.h"

using neutrino::testing::op_cases;
using neutrino::testing::OpCase;

TEST(OpTable, EveryOpHasARunnerAndEveryRunnerACase) {
  std::set<std::string> ops, runners;
  for (const OpCase& c : op_cases()) ops.insert(c.op);
  for (const std::string& name : neutrino::testing::op_runner_names()) runners.insert(name);
  for (const std::string& op : ops)
    EXPECT_TRUE(runners.count(op)) << op << " has no runner in tests/op_table.cpp";
  for (const std::string& op : runners)
    EXPECT_TRUE(ops.count(op)) << op << " has no case in tests/op_table.json";
}

TEST(OpTable, EveryCaseIsChecked) {
  ASSERT_GE(op_cases().size(), 150u);
  for (const OpCase& c : op_cases()) {
    EXPECT_FALSE(c.checks.empty()) << c.name;
    // gtest parameter names allow only letters, digits and underscores.
    EXPECT_EQ(c.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos)
        << c.name;
  }
}
