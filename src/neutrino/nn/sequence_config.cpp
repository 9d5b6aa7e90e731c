#include "neutrino/nn/sequence_config.h"

#include "neutrino/io/option_fields.h"
#include "neutrino/nn/layer_config.h"
#include "neutrino/nn/recurrent.h"
#include "neutrino/nn/sequence.h"

namespace neutrino::nn {

using nlohmann::json;

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, RecurrentOptions>
void option_fields(Self& o, F&& f) {
  f("activation", o.activation);
  f("use_bias", o.use_bias);
  f("return_sequences", o.return_sequences);
  f("go_backwards", o.go_backwards);
  f("unit_forget_bias", o.unit_forget_bias);
  f("kernel_initializer", o.kernel_initializer);
  f("recurrent_initializer", o.recurrent_initializer);
  f("bias_initializer", o.bias_initializer);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, BidirectionalOptions>
void option_fields(Self& o, F&& f) {
  f("merge_mode", o.merge_mode);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, Conv1DOptions>
void option_fields(Self& o, F&& f) {
  f("strides", o.strides, 1, kMaxWindow);
  f("padding", o.padding);
  f("dilation_rate", o.dilation_rate, 1, kMaxWindow);
  f("activation", o.activation);
  f("use_bias", o.use_bias);
  f("kernel_initializer", o.kernel_initializer);
  f("bias_initializer", o.bias_initializer);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, Pool1DOptions>
void option_fields(Self& o, F&& f) {
  f("strides", o.strides, 0, kMaxWindow);
  f("padding", o.padding);
}

LayerPtr sequence_layer_from_config(const std::string& type, io::ConfigReader& r,
                                    const Shape& input_shape, const std::string& name) {
  if (type == "SimpleRNN" || type == "LSTM" || type == "GRU") {
    const int64_t units = r.require_int("units", 1, kMaxLayerElements / 4);
    RecurrentOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    if (type == "SimpleRNN") return std::make_shared<SimpleRNN>(units, o);
    if (type == "LSTM") return std::make_shared<LSTM>(units, o);
    return std::make_shared<GRU>(units, o);
  }
  if (type == "Bidirectional") {
    const LayerPtr inner = layer_from_config(r.require_raw("layer"), r.path_of("layer"));
    BidirectionalOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<Bidirectional>(inner, o);
  }
  if (type == "Conv1D") {
    const int64_t filters = r.require_int("filters", 1, kMaxLayerElements);
    const int64_t kernel = r.require_int("kernel_size", 1, kMaxWindow);
    Conv1DOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<Conv1D>(filters, kernel, o);
  }
  if (type == "MaxPooling1D") {
    const int64_t pool = r.get_int("pool_size", 2, 1, kMaxWindow);
    Pool1DOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<MaxPooling1D>(pool, o);
  }
  if (type == "GlobalAveragePooling1D") {
    return std::make_shared<GlobalAveragePooling1D>(LayerOptions{input_shape, name});
  }
  if (type == "GlobalMaxPooling1D") {
    return std::make_shared<GlobalMaxPooling1D>(LayerOptions{input_shape, name});
  }
  return nullptr;
}

bool sequence_layer_to_config(const Layer& layer, json& c) {
  if (const auto* b = dynamic_cast<const Bidirectional*>(&layer)) {
    c["layer"] = json::parse(layer_to_config(b->layer()));
    io::write_fields(b->options(), c);
  } else if (const auto* r = dynamic_cast<const Recurrent*>(&layer)) {
    c["units"] = r->units();
    io::write_fields(r->options(), c);
  } else if (const auto* v = dynamic_cast<const Conv1D*>(&layer)) {
    c.update({{"filters", v->filters()}, {"kernel_size", v->kernel_size()}});
    io::write_fields(v->options(), c);
  } else if (const auto* p = dynamic_cast<const MaxPooling1D*>(&layer)) {
    c["pool_size"] = p->pool_size();
    io::write_fields(p->options(), c);
  } else if (!dynamic_cast<const GlobalAveragePooling1D*>(&layer)) {
    return false;
  }
  return true;
}

std::string describe_sequence_layer_options() {
  std::string out = io::describe_line<RecurrentOptions>("SimpleRNN(units), LSTM(units), GRU(units)");
  out += io::describe_line<BidirectionalOptions>("Bidirectional(layer)");
  out += io::describe_line<Conv1DOptions>("Conv1D(filters, kernel_size)");
  out += io::describe_line<Pool1DOptions>("MaxPooling1D(pool_size=2)");
  out += "  GlobalAveragePooling1D, GlobalMaxPooling1D\n";
  return out;
}

}  // namespace neutrino::nn
