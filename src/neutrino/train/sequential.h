// Sequential: the Model that holds a chain of layers, each taking the one before.
//
//   Sequential model({Dense(3, "sigmoid", {.input_shape = {2}}), Dense(1, "sigmoid")});
//   model.compile("adam", "binary_crossentropy", {"accuracy"});
//   model.fit(x, y, {.epochs = 1000, .verbose = 0});
#pragma once

#include <string>
#include <vector>

#include "neutrino/train/model.h"

namespace neutrino::train {

// Holds no state beyond Model's, so a Sequential converts to a Model without loss.
class Sequential : public Model {
 public:
  explicit Sequential(std::vector<nn::AnyLayer> layers = {}, std::string name = "sequential");

  // Appends a layer, naming it Keras-style ("dense", "dense_1", ...) unless it has a name, and
  // builds it when the layers before it are built (or it is the first and declares an
  // input_shape), unless `build` is false. Constant time: building a model is linear.
  void add(nn::AnyLayer layer, bool build = true);
  using Model::build;
};

}  // namespace neutrino::train
