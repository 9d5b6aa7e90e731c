#include "neutrino/nn/layer_config.h"

#include "neutrino/io/config_reader.h"
#include "neutrino/nn/merge.h"

namespace neutrino::nn {

using nlohmann::json;

namespace {
json shape_json(const Shape& shape) { return json(std::vector<int64_t>(shape.begin(), shape.end())); }

// ZeroPadding2D's padding as in Keras: n, [rows, columns], or [[top, bottom], [left, right]].
LayerPtr zero_padding_from_config(io::ConfigReader& r, const Shape& input_shape,
                                  const std::string& name) {
  const ZeroPadding2DOptions o{.input_shape = input_shape, .name = name};
  if (!r.has("padding")) return std::make_shared<ZeroPadding2D>(1, o);
  const json& p = r.get_raw("padding");
  auto dim = [&](const json& v) -> int64_t {
    NEUTRINO_CHECK_VALUE(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxWindow,
                         "{}: expected n, [rows, columns] or [[top, bottom], [left, right]] with "
                         "values in [0, {}], got {}", r.path_of("padding"), kMaxWindow, io::describe(p));
    return v.get<int64_t>();
  };
  if (p.is_number()) return std::make_shared<ZeroPadding2D>(dim(p), o);
  NEUTRINO_CHECK_VALUE(p.is_array() && p.size() == 2, "{}: expected n, [rows, columns] or [[top, "
                       "bottom], [left, right]], got {}", r.path_of("padding"), io::describe(p));
  if (p[0].is_array() || p[1].is_array()) {
    for (const json& side : p) {
      NEUTRINO_CHECK_VALUE(side.is_array() && side.size() == 2, "{}: expected [[top, bottom], "
                           "[left, right]], got {}", r.path_of("padding"), io::describe(p));
    }
    return std::make_shared<ZeroPadding2D>(Size2(dim(p[0][0]), dim(p[0][1])),
                                           Size2(dim(p[1][0]), dim(p[1][1])), o);
  }
  return std::make_shared<ZeroPadding2D>(Size2(dim(p[0]), dim(p[1])), o);
}

template <class L>
const L* as(const Layer& layer) {
  return dynamic_cast<const L*>(&layer);
}
}  // namespace

std::string layer_to_config(const Layer& layer) {
  json c = json::object();
  c["name"] = layer.name();
  if (!layer.declared_input_shape().empty()) c["input_shape"] = shape_json(layer.declared_input_shape());
  if (const auto* d = as<Dense>(layer)) {
    const DenseOptions& o = d->options();
    c.update({{"units", d->units()}, {"activation", o.activation.empty() ? "linear" : o.activation},
              {"use_bias", o.use_bias}, {"kernel_initializer", o.kernel_initializer},
              {"bias_initializer", o.bias_initializer}});
  } else if (const auto* a = as<Activation>(layer)) {
    c["activation"] = a->activation();
  } else if (const auto* r = as<Dropout>(layer)) {
    c["rate"] = r->rate();
  } else if (const auto* v = as<Conv2D>(layer)) {
    const Conv2DOptions& o = v->options();
    c.update({{"filters", v->filters()}, {"kernel_size", {v->kernel_size().h, v->kernel_size().w}},
              {"strides", {o.strides.h, o.strides.w}}, {"padding", o.padding},
              {"dilation_rate", {o.dilation_rate.h, o.dilation_rate.w}}, {"groups", o.groups},
              {"activation", o.activation.empty() ? "linear" : o.activation},
              {"use_bias", o.use_bias}, {"kernel_initializer", o.kernel_initializer},
              {"bias_initializer", o.bias_initializer}});
  } else if (const auto* p = as<MaxPooling2D>(layer)) {  // also AveragePooling2D
    c.update({{"pool_size", {p->pool_size().h, p->pool_size().w}},
              {"strides", p->options().strides}, {"padding", p->options().padding}});
  } else if (const auto* b = as<BatchNormalization>(layer)) {
    const auto& o = b->options();
    c.update({{"momentum", o.momentum}, {"epsilon", o.epsilon}, {"center", o.center}, {"scale", o.scale}});
  } else if (const auto* l = as<LayerNormalization>(layer)) {
    const auto& o = l->options();
    c.update({{"epsilon", o.epsilon}, {"center", o.center}, {"scale", o.scale}});
  } else if (const auto* e = as<Embedding>(layer)) {
    c.update({{"input_dim", e->input_dim()}, {"output_dim", e->output_dim()}});
  } else if (const auto* u = as<ReLU>(layer)) {
    c.update({{"max_value", u->options().max_value}, {"negative_slope", u->options().negative_slope}});
  } else if (const auto* z = as<ZeroPadding2D>(layer)) {
    c["padding"] = {{z->rows().h, z->rows().w}, {z->columns().h, z->columns().w}};
  } else if (const auto* k = as<Concatenate>(layer)) {
    c["axis"] = k->axis();
  } else if (!as<Flatten>(layer) && !as<MergeLayer>(layer) && !as<GlobalAveragePooling2D>(layer)) {
    throw ValueError(fmt::format("layer '{}' of type {} cannot be saved as a config", layer.name(),
                                 layer.type_name()));
  }
  return json{{layer.type_name(), c}}.dump();
}

LayerPtr layer_from_config(const std::string& json_text, const std::string& path) {
  return layer_from_config(io::parse_json(json_text, path), path);
}

LayerPtr layer_from_config(const json& config, const std::string& path) {
  constexpr int64_t kMaxSize = kMaxLayerElements;
  const auto [type, options] = io::named_entry(config, path);
  io::ConfigReader r(options, path + "." + type);
  const Shape input_shape = r.get_ints("input_shape", {}, 1, kMaxSize);
  const std::string name = r.get_string("name", "");
  LayerPtr layer;
  try {
    if (type == "Dense") {
      DenseOptions o{.input_shape = input_shape, .name = name};
      const int64_t units = r.require_int("units", 1, kMaxSize);
      o.activation = r.get_string("activation", "");
      o.use_bias = r.get_bool("use_bias", true);
      o.kernel_initializer = r.get_string("kernel_initializer", o.kernel_initializer);
      o.bias_initializer = r.get_string("bias_initializer", o.bias_initializer);
      layer = std::make_shared<Dense>(units, o);
    } else if (type == "Activation") {
      NEUTRINO_CHECK_VALUE(r.has("activation"), "{}: missing required field",
                           r.path_of("activation"));
      layer = std::make_shared<Activation>(r.get_string("activation", ""),
                                           LayerOptions{input_shape, name});
    } else if (type == "Dropout") {
      layer = std::make_shared<Dropout>(r.require_double("rate", 0, 1),
                                        LayerOptions{input_shape, name});
    } else if (type == "Flatten") {
      layer = std::make_shared<Flatten>(LayerOptions{input_shape, name});
    } else if (type == "Conv2D") {
      Conv2DOptions o{.input_shape = input_shape, .name = name};
      const int64_t filters = r.require_int("filters", 1, kMaxSize);
      NEUTRINO_CHECK_VALUE(r.has("kernel_size"), "{}: missing required field", r.path_of("kernel_size"));
      const auto [kh, kw] = r.get_pair("kernel_size", {0, 0}, 1, kMaxWindow);
      const auto [sh, sw] = r.get_pair("strides", {1, 1}, 1, kMaxWindow);
      const auto [dh, dw] = r.get_pair("dilation_rate", {1, 1}, 1, kMaxWindow);
      o.strides = Size2(sh, sw);
      o.dilation_rate = Size2(dh, dw);
      o.padding = r.get_string("padding", "valid");
      o.groups = r.get_int("groups", 1, 1, kMaxSize);
      o.activation = r.get_string("activation", "");
      o.use_bias = r.get_bool("use_bias", true);
      o.kernel_initializer = r.get_string("kernel_initializer", o.kernel_initializer);
      o.bias_initializer = r.get_string("bias_initializer", o.bias_initializer);
      layer = std::make_shared<Conv2D>(filters, Size2(kh, kw), o);
    } else if (type == "MaxPooling2D" || type == "AveragePooling2D") {
      const auto [ph, pw] = r.get_pair("pool_size", {2, 2}, 1, kMaxWindow);
      Pool2DOptions o{.input_shape = input_shape, .name = name};
      o.strides = r.get_int("strides", 0, 0, kMaxWindow);
      o.padding = r.get_string("padding", "valid");
      if (type == "MaxPooling2D") {
        layer = std::make_shared<MaxPooling2D>(Size2(ph, pw), o);
      } else {
        layer = std::make_shared<AveragePooling2D>(Size2(ph, pw), o);
      }
    } else if (type == "BatchNormalization") {
      BatchNormalizationOptions o{.input_shape = input_shape, .name = name};
      o.momentum = r.get_double("momentum", o.momentum, 0, 1);
      o.epsilon = r.get_double("epsilon", o.epsilon, 1e-30, 1e6);
      o.center = r.get_bool("center", o.center);
      o.scale = r.get_bool("scale", o.scale);
      layer = std::make_shared<BatchNormalization>(o);
    } else if (type == "LayerNormalization") {
      LayerNormalizationOptions o{.input_shape = input_shape, .name = name};
      o.epsilon = r.get_double("epsilon", o.epsilon, 1e-30, 1e6);
      o.center = r.get_bool("center", o.center);
      o.scale = r.get_bool("scale", o.scale);
      layer = std::make_shared<LayerNormalization>(o);
    } else if (type == "Embedding") {
      const int64_t input_dim = r.require_int("input_dim", 1, kMaxSize);
      const int64_t output_dim = r.require_int("output_dim", 1, kMaxSize);
      EmbeddingOptions o{.input_shape = input_shape, .name = name};
      o.embeddings_initializer = r.get_string("embeddings_initializer", o.embeddings_initializer);
      layer = std::make_shared<Embedding>(input_dim, output_dim, o);
    } else if (type == "ReLU") {
      ReLUOptions o{.input_shape = input_shape, .name = name};
      o.max_value = r.get_double("max_value", o.max_value, 0, 1e30);
      o.negative_slope = r.get_double("negative_slope", o.negative_slope, 0, 1e30);
      layer = std::make_shared<ReLU>(o);
    } else if (type == "GlobalAveragePooling2D") {
      layer = std::make_shared<GlobalAveragePooling2D>(LayerOptions{input_shape, name});
    } else if (type == "GlobalMaxPooling2D") {
      layer = std::make_shared<GlobalMaxPooling2D>(LayerOptions{input_shape, name});
    } else if (type == "ZeroPadding2D") {
      layer = zero_padding_from_config(r, input_shape, name);
    } else if (type == "Add" || type == "Subtract" || type == "Multiply" || type == "Average") {
      const LayerOptions o{input_shape, name};
      if (type == "Add") layer = std::make_shared<Add>(o);
      if (type == "Subtract") layer = std::make_shared<Subtract>(o);
      if (type == "Multiply") layer = std::make_shared<Multiply>(o);
      if (type == "Average") layer = std::make_shared<Average>(o);
    } else if (type == "Concatenate") {
      layer = std::make_shared<Concatenate>(ConcatenateOptions{
          .input_shape = input_shape, .name = name, .axis = r.get_int("axis", -1, -64, 64)});
    } else {
      throw ValueError(fmt::format(
          "{}: unknown layer '{}' (known: Dense, Activation, ReLU, Dropout, Flatten, Conv2D, "
          "MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, "
          "ZeroPadding2D, BatchNormalization, LayerNormalization, Embedding, Add, Subtract, "
          "Multiply, Average, Concatenate)",
          path, type));
    }
  } catch (const ValueError& e) {
    const std::string what = e.what();
    // Errors from the layer's own checks get the config path in front.
    if (what.starts_with(path)) throw;
    throw ValueError(fmt::format("{}.{}: {}", path, type, what));
  }
  r.finish();
  return layer;
}

}  // namespace neutrino::nn
