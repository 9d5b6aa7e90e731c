#include "neutrino/nn/layer_config.h"

#include "neutrino/io/config_reader.h"
#include "neutrino/io/option_fields.h"
#include "neutrino/nn/gpt_backbone.h"
#include "neutrino/nn/merge.h"
#include "neutrino/nn/sequence_config.h"
#include "neutrino/nn/transformer_config.h"

namespace neutrino::nn {

using nlohmann::json;

// Each options struct's fields, once (io/option_fields.h): layer_from_config reads them,
// layer_to_config writes them, and `neutrino options` lists them; the structs' initializers are
// the defaults. input_shape and name are common to all layers and read apart.
template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, DenseOptions>
void option_fields(Self& o, F&& f) {
  f("activation", o.activation);
  f("use_bias", o.use_bias);
  f("kernel_initializer", o.kernel_initializer);
  f("bias_initializer", o.bias_initializer);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, Conv2DOptions>
void option_fields(Self& o, F&& f) {
  f("strides", o.strides, 1, kMaxWindow);
  f("padding", o.padding);
  f("dilation_rate", o.dilation_rate, 1, kMaxWindow);
  f("groups", o.groups, 1, kMaxLayerElements);
  f("activation", o.activation);
  f("use_bias", o.use_bias);
  f("kernel_initializer", o.kernel_initializer);
  f("bias_initializer", o.bias_initializer);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, Pool2DOptions>
void option_fields(Self& o, F&& f) {
  f("strides", o.strides, 0, kMaxWindow);
  f("padding", o.padding);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, BatchNormalizationOptions>
void option_fields(Self& o, F&& f) {
  f("momentum", o.momentum, 0.0, 1.0);
  f("epsilon", o.epsilon, 1e-30, 1e6);
  f("center", o.center);
  f("scale", o.scale);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, LayerNormalizationOptions>
void option_fields(Self& o, F&& f) {
  f("epsilon", o.epsilon, 1e-30, 1e6);
  f("center", o.center);
  f("scale", o.scale);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, EmbeddingOptions>
void option_fields(Self& o, F&& f) {
  f("embeddings_initializer", o.embeddings_initializer);
  f("mask_zero", o.mask_zero);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, ReLUOptions>
void option_fields(Self& o, F&& f) {
  f("max_value", o.max_value, 0.0, 1e30);
  f("negative_slope", o.negative_slope, 0.0, 1e30);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, ConcatenateOptions>
void option_fields(Self& o, F&& f) {
  f("axis", o.axis, -64, 64);
}

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
    c["units"] = d->units();
    io::write_fields(d->options(), c);
  } else if (const auto* a = as<Activation>(layer)) {
    c["activation"] = a->activation();
  } else if (const auto* r = as<Dropout>(layer)) {
    c["rate"] = r->rate();
  } else if (const auto* v = as<Conv2D>(layer)) {
    c.update({{"filters", v->filters()}, {"kernel_size", {v->kernel_size().h, v->kernel_size().w}}});
    io::write_fields(v->options(), c);
  } else if (const auto* p = as<MaxPooling2D>(layer)) {  // also AveragePooling2D
    c["pool_size"] = {p->pool_size().h, p->pool_size().w};
    io::write_fields(p->options(), c);
  } else if (const auto* b = as<BatchNormalization>(layer)) {
    io::write_fields(b->options(), c);
  } else if (const auto* l = as<LayerNormalization>(layer)) {
    io::write_fields(l->options(), c);
  } else if (const auto* e = as<Embedding>(layer)) {
    c.update({{"input_dim", e->input_dim()}, {"output_dim", e->output_dim()}});
    io::write_fields(e->options(), c);
  } else if (const auto* u = as<ReLU>(layer)) {
    io::write_fields(u->options(), c);
  } else if (const auto* z = as<ZeroPadding2D>(layer)) {
    c["padding"] = {{z->rows().h, z->rows().w}, {z->columns().h, z->columns().w}};
  } else if (const auto* k = as<Concatenate>(layer)) {
    io::write_fields(k->options(), c);
  } else if (!as<Flatten>(layer) && !as<MergeLayer>(layer) && !as<GlobalAveragePooling2D>(layer) &&
             !sequence_layer_to_config(layer, c) && !transformer_layer_to_config(layer, c) &&
             !gpt_backbone_to_config(layer, c)) {
    throw ValueError(fmt::format("layer '{}' of type {} cannot be saved as a config", layer.name(),
                                 layer.type_name()));
  }
  if (c.contains("activation") && c["activation"] == "") c["activation"] = "linear";
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
      io::read_fields(r, o);
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
      io::read_fields(r, o);
      layer = std::make_shared<Conv2D>(filters, Size2(kh, kw), o);
    } else if (type == "MaxPooling2D" || type == "AveragePooling2D") {
      const auto [ph, pw] = r.get_pair("pool_size", {2, 2}, 1, kMaxWindow);
      Pool2DOptions o{.input_shape = input_shape, .name = name};
      io::read_fields(r, o);
      if (type == "MaxPooling2D") {
        layer = std::make_shared<MaxPooling2D>(Size2(ph, pw), o);
      } else {
        layer = std::make_shared<AveragePooling2D>(Size2(ph, pw), o);
      }
    } else if (type == "BatchNormalization") {
      BatchNormalizationOptions o{.input_shape = input_shape, .name = name};
      io::read_fields(r, o);
      layer = std::make_shared<BatchNormalization>(o);
    } else if (type == "LayerNormalization") {
      LayerNormalizationOptions o{.input_shape = input_shape, .name = name};
      io::read_fields(r, o);
      layer = std::make_shared<LayerNormalization>(o);
    } else if (type == "Embedding") {
      const int64_t input_dim = r.require_int("input_dim", 1, kMaxSize);
      const int64_t output_dim = r.require_int("output_dim", 1, kMaxSize);
      EmbeddingOptions o{.input_shape = input_shape, .name = name};
      io::read_fields(r, o);
      layer = std::make_shared<Embedding>(input_dim, output_dim, o);
    } else if (type == "ReLU") {
      ReLUOptions o{.input_shape = input_shape, .name = name};
      io::read_fields(r, o);
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
      ConcatenateOptions o{.input_shape = input_shape, .name = name};
      io::read_fields(r, o);
      layer = std::make_shared<Concatenate>(o);
    } else if (type == "GPTBackbone") {
      layer = gpt_backbone_from_config(r, input_shape, name);
    } else if (!(layer = sequence_layer_from_config(type, r, input_shape, name)) &&
               !(layer = transformer_layer_from_config(type, r, input_shape, name))) {
      throw ValueError(fmt::format(
          "{}: unknown layer '{}' (known: Dense, Activation, ReLU, Dropout, Flatten, Conv2D, "
          "MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, "
          "ZeroPadding2D, BatchNormalization, LayerNormalization, Embedding, Add, Subtract, "
          "Multiply, Average, Concatenate, SimpleRNN, LSTM, GRU, Bidirectional, Conv1D, "
          "MaxPooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MultiHeadAttention, RMSNorm, "
          "TransformerBlock, TransformerEncoder, GPTBackbone)",
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


std::string describe_layer_options() {
  std::string out = "layers (every layer also takes name, input_shape and, in a graph, inputs):\n";
  out += io::describe_line<DenseOptions>("Dense(units)");
  out += "  Activation(activation)\n  Dropout(rate)\n  Flatten\n";
  out += io::describe_line<Conv2DOptions>("Conv2D(filters, kernel_size)");
  out += io::describe_line<Pool2DOptions>("MaxPooling2D(pool_size=2), AveragePooling2D(pool_size=2)");
  out += "  GlobalAveragePooling2D, GlobalMaxPooling2D\n  ZeroPadding2D: padding=1\n";
  out += io::describe_line<BatchNormalizationOptions>("BatchNormalization");
  out += io::describe_line<LayerNormalizationOptions>("LayerNormalization");
  out += io::describe_line<EmbeddingOptions>("Embedding(input_dim, output_dim)");
  out += io::describe_line<ReLUOptions>("ReLU");
  out += "  Add, Subtract, Multiply, Average\n";
  out += io::describe_line<ConcatenateOptions>("Concatenate");
  out += describe_sequence_layer_options();
  out += describe_transformer_layer_options();
  out += "  GPTBackbone(GPT: {GPT options} or from_model: PATH): pooling=\"last\" (or \"mean\"), "
         "pretrained=true\n";
  return out;
}

}  // namespace neutrino::nn
