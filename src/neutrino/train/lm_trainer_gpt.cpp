// The GPT side of lm_trainer.h, apart from the generic trainer so that the trainer (and its
// tests on small modules) does not depend on the Transformer's implementation.
#include "neutrino/nn/gpt.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/lm_trainer.h"

namespace neutrino::train {

LanguageModelSpec language_model_spec(const nn::GPT& model) {
  return {.architecture = language_model_architecture(model.options()),
          .context = model.options().context,
          .decayed = model.decayed_parameter_names(),
          .frozen = model.frozen_parameter_names(),
          .flops_per_token = [&model](int64_t t) { return model.training_flops_per_token(t); }};
}

LmTrainResult train_language_model(nn::GPT& model, const data::TokenShard& train,
                                   const data::TokenShard* val, const LmTrainOptions& options,
                                   const io::ModelInfo& info) {
  return train_language_model(model, language_model_spec(model), train, val, options, info);
}

}  // namespace neutrino::train
