// The layers of src/neutrino include only downwards. The order is the README's line
// "Layers, bottom to top: core → tensor → ..."; this test reads it from there, so the README and
// the check cannot disagree.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kSource = NEUTRINO_SOURCE_DIR;

// The folders of src/neutrino from the README's "Layers, bottom to top:" line, lowest first.
std::vector<std::string> readme_order() {
  std::ifstream readme(kSource / "README.md");
  std::string line;
  const std::string marker = "Layers, bottom to top:";
  while (std::getline(readme, line)) {
    const size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    std::vector<std::string> order;
    const std::regex name("[a-z_]+");
    const std::string rest = line.substr(at + marker.size());
    for (std::sregex_iterator it(rest.begin(), rest.end(), name), end; it != end; ++it) {
      order.push_back(it->str());
    }
    return order;
  }
  return {};
}

struct Violation {
  std::string file, included;
  int line;
};

// Every `#include "neutrino/<folder>/..."` under `root` (a copy of src/neutrino's layout) whose
// folder sits above the including file's folder in `order`. A folder missing from `order` is a
// violation too, so a new folder must be placed.
std::vector<Violation> layering_violations(const fs::path& root, const std::vector<std::string>& order) {
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < order.size(); ++i) rank[order[i]] = i;
  std::vector<Violation> out;
  const std::regex include_re(R"(^\s*#\s*include\s*"neutrino/([a-z_]+)/)");
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const fs::path relative = fs::relative(entry.path(), root);
    if (relative.begin() == relative.end() || std::next(relative.begin()) == relative.end()) continue;
    const std::string folder = relative.begin()->string();
    auto own = rank.find(folder);
    if (own == rank.end()) {
      out.push_back({relative.string(), "(the folder '" + folder + "' is not in the order)", 0});
      continue;
    }
    std::ifstream in(entry.path());
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      std::smatch m;
      if (!std::regex_search(line, m, include_re)) continue;
      auto other = rank.find(m[1].str());
      if (other == rank.end() || other->second > own->second) {
        out.push_back({relative.string(), m[1].str(), number});
      }
    }
  }
  return out;
}

std::string describe(const std::vector<Violation>& violations) {
  std::ostringstream s;
  for (const auto& v : violations) s << "  " << v.file << ":" << v.line << " includes " << v.included << "\n";
  return s.str();
}

}  // namespace

TEST(Layering, ReadmeGivesTheOrderOfEveryFolder) {
  const std::vector<std::string> order = readme_order();
  ASSERT_GE(order.size(), 5u) << "README.md has no 'Layers, bottom to top:' line";
  for (const auto& entry : fs::directory_iterator(kSource / "src" / "neutrino")) {
    if (!entry.is_directory()) continue;
    const std::string folder = entry.path().filename().string();
    EXPECT_NE(std::find(order.begin(), order.end(), folder), order.end())
        << "src/neutrino/" << folder << " is not in the README's layer order";
  }
}

TEST(Layering, NoFileIncludesAHigherLayer) {
  const std::vector<Violation> violations = layering_violations(kSource / "src" / "neutrino", readme_order());
  EXPECT_TRUE(violations.empty()) << "upward includes:\n" << describe(violations);
}

TEST(Layering, APlantedUpwardIncludeIsCaught) {
  const fs::path root = fs::temp_directory_path() / ("neutrino_layering_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "tensor");
  fs::create_directories(root / "nn");
  std::ofstream(root / "nn" / "ok.h") << "#include \"neutrino/tensor/tensor.h\"\n";
  std::ofstream(root / "tensor" / "bad.cpp") << "// a tensor file reaching up\n#include \"neutrino/nn/layers.h\"\n";
  const std::vector<Violation> found = layering_violations(root, {"core", "tensor", "nn"});
  ASSERT_EQ(found.size(), 1u) << describe(found);
  EXPECT_EQ(found[0].file, "tensor/bad.cpp");
  EXPECT_EQ(found[0].included, "nn");
  EXPECT_EQ(found[0].line, 2);
  fs::remove_all(root);
}
