#include "neutrino/train/sequential.h"

namespace neutrino::train {

Sequential::Sequential(std::vector<nn::AnyLayer> layers, std::string name) : Model(std::move(name)) {
  for (auto& layer : layers) add(layer);
}

void Sequential::add(nn::AnyLayer any, bool build_now) {
  const nn::LayerPtr& layer = any.get();
  NEUTRINO_CHECK_VALUE(layer != nullptr, "Sequential.add: null layer");
  NEUTRINO_CHECK_VALUE(graph_->layers().size() < kMaxLayers, "Sequential.add: more than {} layers",
                       kMaxLayers);
  const bool first = graph_->layers().empty();
  const int node = graph_->add_layer(layer, {static_cast<int>(graph_->nodes().size()) - 1});
  graph_->set_outputs({node});
  if (!build_now) return;
  if (first && !layer->declared_input_shape().empty()) {
    graph_->build({layer->declared_input_shape()});
  } else {
    graph_->build_new_nodes();
  }
}

}  // namespace neutrino::train
