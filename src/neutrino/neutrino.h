// The whole public API in one include, for applications and examples. Library code includes the
// specific headers it needs instead.
#pragma once

#include "neutrino/autograd/autograd.h"
#include "neutrino/backend/runtime.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/data/pipeline.h"
#include "neutrino/io/model_file.h"
#include "neutrino/io/tensor_file.h"
#include "neutrino/nn/graph.h"
#include "neutrino/nn/layers.h"
#include "neutrino/nn/merge.h"
#include "neutrino/nn/recurrent.h"
#include "neutrino/nn/sequence.h"
#include "neutrino/nn/transformer.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"
#include "neutrino/optim/optimizer.h"
#include "neutrino/tensor/tensor.h"
#include "neutrino/train/model.h"
#include "neutrino/train/model_file.h"
#include "neutrino/train/sequential.h"
