// Determinism and concurrency through the public API: the same input gives the same output
// whatever the batch size, the thread count (1, 2) and the order of the inputs; one Model
// shared by several threads, each with its own Session (dense and FCA side by side), gives
// exactly what sequential runs give. The contract is in include/fcabert/engine.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>

#include "fcabert/engine.h"
#include "fcabert/model_file.h"
#include "test_model_tiny_bert.h"

namespace fcabert {
namespace {

// Logits may differ from a run with another batch size or thread count only through oneDNN's
// GEMM blocking (docs/ARCHITECTURE.md, Threads); in practice they are bit-identical here,
// and the argmax label always is.
constexpr float kTolerance = 1e-6f;

class Determinism : public ::testing::TestWithParam<bool /*fca*/> {
 protected:
  void SetUp() override {
    ModelInfo info;
    info.bert = model_test::tiny_config();
    info.head = model_test::tiny_head();
    for (int64_t i = 0; i < info.bert.vocab_size; ++i)
      info.tokenizer.vocab.push_back(i < 5 ? std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                                      "[MASK]"}[static_cast<size_t>(i)]
                                           : "w" + std::to_string(i));
    info.tokenizer.max_len = info.bert.max_position_embeddings;
    if (GetParam()) info.fca = model_test::schedule({0.6, 0.4}, 2);
    info.provenance_json = R"({"source":"test_model_determinism"})";
    path_ = ::testing::TempDir() + "fcabert_determinism_" + std::to_string(::getpid()) +
            (GetParam() ? "_fca" : "_dense") + ".fcab";
    write_model_file(path_, info, model_test::random_bert_tensors(info.bert, 3, 5));
    std::mt19937 rng(11);
    for (int i = 0; i < 37; ++i) {
      const int64_t length = 1 + static_cast<int64_t>(rng() % 40);
      inputs_.push_back(model_test::random_encoding(length, info.bert, rng));
    }
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Runs `inputs` in batches of `batch_size` on a fresh Session.
  static std::vector<Prediction> run(const std::shared_ptr<const Model>& model,
                                     const std::vector<Encoding>& inputs, size_t batch_size) {
    Session session(model);
    std::vector<Prediction> out;
    for (size_t start = 0; start < inputs.size(); start += batch_size) {
      const std::vector<Encoding> batch(
          inputs.begin() + static_cast<std::ptrdiff_t>(start),
          inputs.begin() + static_cast<std::ptrdiff_t>(std::min(inputs.size(), start + batch_size)));
      for (auto& p : session.run(batch)) out.push_back(std::move(p));
    }
    return out;
  }

  static void expect_same(const std::vector<Prediction>& got, const std::vector<Prediction>& want,
                          const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t s = 0; s < want.size(); ++s) {
      ASSERT_EQ(got[s].logits.size(), want[s].logits.size()) << what;
      for (size_t k = 0; k < want[s].logits.size(); ++k)
        EXPECT_NEAR(got[s].logits[k], want[s].logits[k], kTolerance) << what << ", sequence " << s;
      const auto argmax = [](const std::vector<float>& v) {
        return std::max_element(v.begin(), v.end()) - v.begin();
      };
      EXPECT_EQ(argmax(got[s].probabilities), argmax(want[s].probabilities)) << what << ", sequence " << s;
      EXPECT_EQ(got[s].trace.layers.size(), want[s].trace.layers.size()) << what;
      for (size_t l = 0; l < want[s].trace.layers.size(); ++l)
        EXPECT_EQ(got[s].trace.layers[l].rows_out, want[s].trace.layers[l].rows_out) << what;
    }
  }

  std::string path_;
  std::vector<Encoding> inputs_;
};

TEST_P(Determinism, SameOutputWhateverBatchSizeThreadsAndOrder) {
  // Reference: one sequence at a time, one thread.
  const auto reference = run(Model::load(path_, LoadOptions{1}), inputs_, 1);
  size_t bit_identical = 0, compared = 0;
  for (int threads : {1, 2}) {
    const auto model = Model::load(path_, LoadOptions{threads});
    for (size_t batch_size : {size_t{1}, size_t{3}, size_t{8}, size_t{37}}) {
      const std::string what =
          std::to_string(threads) + " thread(s), batch size " + std::to_string(batch_size);
      const auto got = run(model, inputs_, batch_size);
      expect_same(got, reference, what);
      for (size_t s = 0; s < got.size(); ++s, ++compared)
        bit_identical += got[s].logits == reference[s].logits;

      // The inputs in another order: each output follows its input.
      std::vector<size_t> order(inputs_.size());
      std::iota(order.begin(), order.end(), 0);
      std::mt19937 rng(static_cast<uint32_t>(batch_size * 10 + static_cast<size_t>(threads)));
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<Encoding> shuffled;
      for (size_t i : order) shuffled.push_back(inputs_[i]);
      const auto shuffled_out = run(model, shuffled, batch_size);
      std::vector<Prediction> unshuffled(inputs_.size());
      for (size_t i = 0; i < order.size(); ++i) unshuffled[order[i]] = shuffled_out[i];
      expect_same(unshuffled, reference, what + ", shuffled order");
    }
  }
  // Recorded, not required: how many outputs were bit-identical to the reference.
  ::testing::Test::RecordProperty("bit_identical",
                                  std::to_string(bit_identical) + "/" + std::to_string(compared));
  std::printf("[ info ] %zu of %zu outputs bit-identical to one-at-a-time, one thread\n", bit_identical,
              compared);
}

TEST_P(Determinism, OneModelSharedBySessionsOnSeveralThreads) {
  for (int load_threads : {1, 2}) {
    const auto model = Model::load(path_, LoadOptions{load_threads});
    // Sequential results: the file's schedule and the dense model, in two orders.
    const auto sequential = run(model, inputs_, 8);
    SessionOptions dense_options;
    dense_options.schedule = FcaSchedule{};
    Session dense_session(model, dense_options);
    const auto dense_sequential = dense_session.run(inputs_);
    std::vector<Encoding> reversed(inputs_.rbegin(), inputs_.rend());

    constexpr int kThreads = 4, kRounds = 6;
    std::vector<std::vector<Prediction>> results(kThreads);
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        // Odd threads run dense, even ones the file's schedule (the same in a dense file);
        // thread 2 feeds the inputs in reverse order in batches of 5.
        SessionOptions options;
        if (t % 2 == 1) options.schedule = FcaSchedule{};
        Session session(model, options);
        for (int round = 0; round < kRounds; ++round) {
          if (t == 2) {
            std::vector<Prediction> out;
            for (size_t start = 0; start < reversed.size(); start += 5) {
              const std::vector<Encoding> batch(
                  reversed.begin() + static_cast<std::ptrdiff_t>(start),
                  reversed.begin() + static_cast<std::ptrdiff_t>(std::min(reversed.size(), start + 5)));
              for (auto& p : session.run(batch)) out.push_back(std::move(p));
            }
            std::reverse(out.begin(), out.end());
            results[static_cast<size_t>(t)] = std::move(out);
          } else {
            results[static_cast<size_t>(t)] = session.run(inputs_);
          }
        }
      });
    }
    for (auto& worker : workers) worker.join();
    for (int t = 0; t < kThreads; ++t)
      expect_same(results[static_cast<size_t>(t)], t % 2 == 1 ? dense_sequential : sequential,
                  "thread " + std::to_string(t) + ", load threads " + std::to_string(load_threads));
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, Determinism, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Fca" : "Dense";
                         });

}  // namespace
}  // namespace fcabert
