// The canonical first example: Keras's XOR program, line by line.
//
//   tf.random.set_seed(42)
//   x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
//   y = np.array([0, 1, 1, 0])
//   model = tf.keras.Sequential([
//       tf.keras.layers.Dense(units=3, input_shape=(2,), activation='sigmoid'),
//       tf.keras.layers.Dense(units=1, activation='sigmoid')
//   ])
//   model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
//   model.fit(x, y, epochs=1000, verbose=0)
//   loss, accuracy = model.evaluate(x, y, verbose=0)
//   print(f'loss: {loss}, accuracy: {accuracy}')
//
// With Keras's defaults (Adam at 0.001, one batch of 4 per epoch) 1000 epochs are not enough to
// learn XOR: the expected output is a loss near 0.69 and accuracy 0.5 or 0.75, as in PyTorch with
// the same settings. tests/test_model.cpp trains the same network at learning_rate=0.1 and solves it.
#include <fmt/core.h>

#include "neutrino/neutrino.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;

int main() {
  try {
    manual_seed(42);
    Tensor x = Tensor::of({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
    Tensor y = Tensor::of({0, 1, 1, 0});
    Sequential model({
        Dense(3, "sigmoid", {.input_shape = {2}}),
        Dense(1, "sigmoid"),
    });
    model.compile("adam", "binary_crossentropy", {"accuracy"});
    model.fit(x, y, {.epochs = 1000, .verbose = 0});
    Scores scores = model.evaluate(x, y, {.verbose = 0});
    fmt::print("loss: {}, accuracy: {}\n", scores["loss"], scores["accuracy"]);
    return 0;
  } catch (const neutrino::Error& e) {
    fmt::print(stderr, "xor: {}\n", e.what());
    return 1;
  }
}
