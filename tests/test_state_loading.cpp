// Loading weights as a newcomer with PyTorch-trained files does (issue 11 item 8): every missing
// and unexpected name in one error, "build the model first" for a model without weights yet, and
// a file that is not safetensors named for what it is.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "neutrino/core/random.h"
#include "neutrino/io/safetensors.h"
#include "neutrino/nn/layers.h"
#include "neutrino/train/sequential.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::expect_error;

namespace {
train::Sequential mlp(uint64_t seed) {
  manual_seed(seed);
  return train::Sequential({nn::Dense(4, "relu", {.input_shape = {3}}), nn::Dense(2)});
}

std::vector<uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

void expect_not_safetensors(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts) {
  std::vector<std::string> all = parts;
  all.insert(all.begin(), "w.pt: not a safetensors file: it is ");
  expect_error<IOError>([&] { io::read_safetensors_bytes(bytes.data(), bytes.size(), "w.pt"); }, all);
}
}  // namespace

TEST(StateLoading, EveryMissingAndUnexpectedNameInOneError) {
  train::Sequential model = mlp(1);
  auto state = mlp(2).state_dict();
  // PyTorch's names for the same MLP: all four missing, all four unexpected.
  std::map<std::string, Tensor> torch_names;
  for (const auto& [name, t] : state) torch_names["fc." + name] = t;
  expect_error<ValueError>([&] { model.load_state_dict(torch_names); },
                           {"4 missing tensors: 'dense.bias', 'dense.weight', 'dense_1.bias', 'dense_1.weight'",
                            "4 unexpected tensors (the model has no such parameter or buffer): 'fc.dense.bias', "
                            "'fc.dense.weight', 'fc.dense_1.bias', 'fc.dense_1.weight'"});
  auto one_off = state;
  one_off.erase("dense.bias");
  one_off["extra"] = Tensor::zeros({1});
  expect_error<ValueError>([&] { model.load_state_dict(one_off); },
                           {"1 missing tensor: 'dense.bias'; 1 unexpected tensor", "'extra'"});
  // Nothing is copied from a state that fails: the model keeps its weights.
  const auto before = model.state_dict().at("dense.weight").to_vector<float>();
  auto wrong = state;
  wrong["dense_1.weight"] = Tensor::zeros({3, 3});
  wrong["dense_1.bias"] = Tensor::zeros({5});
  expect_error<ShapeError>([&] { model.load_state_dict(wrong); },
                           {"'dense_1.bias' has shape (5,) in the file but (2,) in the model; 'dense_1.weight' "
                            "has shape (3, 3)"});
  EXPECT_EQ(model.state_dict().at("dense.weight").to_vector<float>(), before);
  // Not strict: the names that match load, the rest is ignored.
  model.load_state_dict(one_off, /*strict=*/false);
  EXPECT_EQ(model.state_dict().at("dense.weight").to_vector<float>(), state.at("dense.weight").to_vector<float>());
}

TEST(StateLoading, LongListsAreCut) {
  train::Sequential model = mlp(1);
  std::map<std::string, Tensor> state = model.state_dict();
  for (int i = 0; i < 30; ++i) state[fmt::format("x{:02}", i)] = Tensor::zeros({1});
  expect_error<ValueError>([&] { model.load_state_dict(state); },
                           {"30 unexpected tensors", "'x19', ... (10 more)"});
}

TEST(StateLoading, AnUnbuiltModelSaysBuildItFirst) {
  train::Sequential unbuilt({nn::Dense(4, "relu"), nn::Dense(2)});
  const auto state = mlp(2).state_dict();
  for (bool strict : {true, false}) {
    expect_error<ValueError>([&] { unbuilt.load_state_dict(state, strict); },
                             {"the model has no parameters yet, but the state holds 4 named tensors",
                              "build the model first", "input_shape", "build("});
  }
  unbuilt.load_state_dict({});  // nothing to load into nothing is fine
  unbuilt.build({3});
  unbuilt.load_state_dict(state);
  EXPECT_EQ(unbuilt.state_dict().at("dense_1.bias").to_vector<float>(), state.at("dense_1.bias").to_vector<float>());
}

TEST(StateLoading, OtherFormatsAreNamed) {
  expect_not_safetensors(bytes_of(std::string("PK\x03\x04\x14\0\0\0", 8) + "archive/data.pkl"),
                         {"a ZIP archive", "torch.save", ".npz", "safetensors.torch.save_file"});
  expect_not_safetensors(bytes_of(std::string("\x80\x02\x8a\x0al\xfc\x9c" "F\xf9 j\xa8P\x19.", 16)),
                         {"a Python pickle", "before torch 1.6"});
  expect_not_safetensors(bytes_of(std::string("\x80\x05\x95\x00\x00\x00\x00\x00}\x94.", 11)), {"a Python pickle"});
  expect_not_safetensors(bytes_of(std::string("\x93NUMPY\x01\0v\0{'descr': '<f4'}", 24)), {"a NumPy .npy file"});
  expect_not_safetensors(bytes_of(std::string("\x89HDF\r\n\x1a\n\0\0\0\0", 12)), {"an HDF5 file"});
  expect_not_safetensors(bytes_of(std::string("\x1f\x8b\x08\0\0\0\0\0\0\x03", 10)), {"a gzip file"});
  // An unknown start still gets the length message.
  expect_error<IOError>([] {
    const auto b = bytes_of("\xff\xff\xff\xff\xff\xff\xff\xff{}");
    io::read_safetensors_bytes(b.data(), b.size(), "w.bin");
  }, {"w.bin: safetensors header length 18446744073709551615 exceeds the limit"});
}

TEST(StateLoading, AValidHeaderLengthThatLooksLikeAPickleStillReads) {
  // 640 = 0x0280: the file starts 0x80 0x02, as a protocol-2 pickle does.
  io::SafetensorsFile file;
  for (size_t pad = 0; pad < 700; ++pad) {
    file.metadata["pad"] = std::string(pad, 'x');
    const std::vector<uint8_t> bytes = io::write_safetensors_bytes(file);
    if (bytes[0] != 0x80 || bytes[1] != 0x02) continue;
    EXPECT_EQ(io::read_safetensors_bytes(bytes.data(), bytes.size(), "ok").metadata.at("pad").size(), pad);
    return;
  }
  FAIL() << "no padding gave a 640-byte header";
}
