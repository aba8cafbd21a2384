#pragma once
/// @file interaction_network_backward.hpp
/// @brief The backward pass of hepgnn::interaction_network (included by interaction_network.hpp): the reverse of
/// its forward over the same edge blocks, weight gradients summed per fixed chunk and then in chunk order, so they
/// do not depend on the thread count.

#include <algorithm>

#include "hepgnn/nn/interaction_network.hpp"

namespace hepgnn {

template <class T, int In, int Hidden>
void interaction_network<T, In, Hidden>::backward_impl(const matrix<T>& x, const graph& g, const matrix<T>* attr,
                                                         const matrix<T>& dy, cache& c, matrix<T>* dx,
                                                         matrix<T>* dattr) {
  const long n = g.num_nodes, ne = g.num_edges(), H = o_.hidden;
  const int T_ = o_.iterations;
  HEPGNN_CHECK(static_cast<long>(c.e.size()) == T_ + 1 && c.e[0].rows() == ne && c.h[0].rows() == n &&
                   x.rows() == n,
               "interaction_network::backward: call forward with this graph (", n, " nodes, ", ne,
               " edges) first");
  check_shape(dy, ne, o_.out, "interaction_network::backward: output gradient dy");
  check_edge_attr(attr, ne, "interaction_network::backward");
  check_same_forward(c.forward_key, training_key(x, fingerprint(g), attr), "interaction_network::backward",
                     "graph, input x or edge features");
  const index_t* off = g.offsets.data();
  HEPGNN_CHECK(c.blocks.block_node.size() >= 1 && c.blocks.block_node.back() == n &&
                   c.dst.size() == static_cast<std::size_t>(ne),
               "interaction_network::backward: the cache was filled for another graph");
  c.blocks.offsets = off;
  // zeroed weight-gradient partial sums per chunk of blocks, per-thread block scratch, dL/d(pre-activation) rows
  const auto resize_parts = [&](long rows_a) {
    c.parts.reset(c.blocks.chunks(), rows_a, H);
    c.tg.resize(static_cast<std::size_t>(max_threads()));
    for (auto& m : c.tg) m.resize(std::max<index_t>(c.blocks.max_block_edges, 1), std::max<long>(H, o_.out));
    c.dpre.resize(c.e.empty() ? 0 : c.e[0].rows(), H);
  };
  resize_parts(std::max<long>(o_.out, H));

  // ---- output head: y = relu(e W1^T + b1) W2^T + b2
  c.de.resize(ne, H);
  c.blocks.for_each([&](long k, long e0, long e1, long, long, int) {
    const long nb = e1 - e0;
    if (nb == 0) return;
    auto dyb = dy.middleRows(e0, nb);
    auto zo = c.zo.middleRows(e0, nb);
    const long O = o_.out;
    simd::block_mm(O, H, nb, dyb.data(), 1, O, zo.data(), H, c.parts.a[k].data(), H, true, false);
    add_column_sums(dyb, c.parts.ba[k].leftCols(O));
    auto dz = c.dpre.middleRows(e0, nb);
    simd::block_mm(nb, H, O, dyb.data(), O, 1, w_.output.second.weight().data(), H, dz.data(), H, false, false);
    dz = (zo.array() > T(0)).select(dz, T(0));
    simd::block_mm(H, H, nb, dz.data(), 1, H, c.e[T_].data() + e0 * H, H, c.parts.b[k].data(), H, true, false);
    simd::block_mm(nb, H, H, dz.data(), H, 1, w_.output.first.weight().data(), H, c.de.data() + e0 * H, H, false,
                     false);
  });
  c.parts.add_a(w_.output.second.weight_grad(), &w_.output.second.bias_grad(), o_.out);
  c.parts.add_b(w_.output.first.weight_grad());
  add_column_sums(c.dpre, w_.output.first.bias_grad().row(0));

  c.dh.setZero(n, H);
  const int na = static_cast<int>(o_.aggregations.size());
  const long AW = aggregated_width(o_);
  const index_t* src = g.sources.data();
  for (int t = T_ - 1; t >= 0; --t) {
    auto& nn = w_.node_network(t);
    auto& en = w_.edge_network(t);
    // ---- node update: h' = h + relu(relu([h, a] Wn1^T + b) Wn2^T + b); none in the last iteration (see run)
    const bool node_update = t + 1 < T_;
    if (node_update) {
      c.du = (c.un[t].array() > T(0)).select(c.dh, T(0));
      c.parts.add_at_b(nn.second.weight_grad(), c.du, c.zn[t]);
      add_column_sums(c.du, nn.second.bias_grad().row(0));
      c.dzn.noalias() = c.du * nn.second.weight();
      c.dzn = (c.zn[t].array() > T(0)).select(c.dzn, T(0));
      c.parts.add_at_b(nn.first.weight_grad().leftCols(H), c.dzn, c.h[t]);
      c.parts.add_at_b(nn.first.weight_grad().rightCols(AW), c.dzn, c.agg[t]);
      add_column_sums(c.dzn, nn.first.bias_grad().row(0));
      c.dh.noalias() += c.dzn * nn.first.weight().leftCols(H);
      c.dnin.noalias() = c.dzn * nn.first.weight().rightCols(AW);  // dL/d[a, s] (N x AW)
    }

    // ---- edge update, per block: g = dL/de' (incl. aggregation), e' = e + relu(relu(pre) W2^T + b2)
    resize_parts(H);
    c.sdst.resize(n, H);
    c.blocks.for_each([&](long k, long e0, long e1, long n0, long n1, int) {
      const long nb = e1 - e0;
      // aggregation backward into de rows
      for (long i = n0; node_update && i < n1; ++i) {
        const index_t b = off[i], en_ = off[i + 1];
        if (b == en_) continue;
        for (int a = 0; a < na; ++a) {
          const T* da = c.dnin.data() + i * AW + a * H;
          const auto kind = o_.aggregations[a];
          const index_t* am = kind == aggregation::max ? c.argmax[t].data() + (i * na + a) * H : nullptr;
          simd::reduce_segment_backward<simd::gradient_mode::add>(b, en_, H, kind, da, am,
                                                                  [&](index_t e) { return c.de.data() + long(e) * H; });
        }
      }
      // s = sum of leaving edges: each edge gets dL/ds of its source
      for (long e = e0; node_update && o_.source_aggregation && e < e1; ++e)
        detail::row_add(c.de.data() + e * H, c.dnin.data() + long(src[e]) * AW + na * H, H);
      if (nb > 0) {
        auto gb = c.de.middleRows(e0, nb);
        auto mb = c.m[t].middleRows(e0, nb);
        auto zb = c.z[t].middleRows(e0, nb);
        auto dp = c.dpre.middleRows(e0, nb);
        // dM into dp temporarily, then dZ
        auto& tg = c.tg[thread_index()];
        auto dm = tg.topRows(nb);
        dm = (mb.array() > T(0)).select(gb, T(0));
        const long ldm = tg.cols();
        simd::block_mm(H, H, nb, dm.data(), 1, ldm, zb.data(), H, c.parts.a[k].data(), H, true, false);
        add_column_sums(dm, c.parts.ba[k]);
        simd::block_mm(nb, H, H, dm.data(), ldm, 1, en.second.weight().data(), H, dp.data(), H, false, false);
        dp = (zb.array() > T(0)).select(dp, T(0));
        simd::block_mm(H, H, nb, dp.data(), 1, H, c.e[t].data() + e0 * H, H, c.parts.b[k].data(), H, true, false);
        simd::block_mm(nb, H, H, dp.data(), H, 1, en.first.weight().data() + 2 * H, 3 * H, gb.data(), H, true,
                       false);
      }
      products::destination_sums(off, n0, n1, c.dpre, c.sdst, H);
    });
    c.parts.add_a(en.second.weight_grad(), &en.second.bias_grad(), H);
    c.parts.add_b(en.first.weight_grad().rightCols(H));
    products::source_sums(g, c.by_source, c.dpre, c.ssrc, H);
    c.parts.add_at_b(en.first.weight_grad().leftCols(H), c.ssrc, c.h[t]);
    c.parts.add_at_b(en.first.weight_grad().middleCols(H, H), c.sdst, c.h[t]);
    add_column_sums(c.sdst, en.first.bias_grad().row(0));
    c.dh.noalias() += c.ssrc * en.first.weight().leftCols(H);
    c.dh.noalias() += c.sdst * en.first.weight().middleCols(H, H);
  }

  // ---- edge encoder: e0 = relu(relu(Pa[src] + Pb[dst]) W2^T + b2)
  const long F = o_.in;
  resize_parts(H);
  c.sdst.resize(n, H);
  c.blocks.for_each([&](long k, long e0, long e1, long n0, long n1, int) {
    const long nb = e1 - e0;
    if (nb > 0) {
      auto gb = c.de.middleRows(e0, nb);
      auto dp = c.dpre.middleRows(e0, nb);
      auto zb = c.zex.middleRows(e0, nb);
      auto& tg = c.tg[thread_index()];
      auto dm = tg.topRows(nb);
      dm = (c.e[0].middleRows(e0, nb).array() > T(0)).select(gb, T(0));
      const long ldm = tg.cols();
      simd::block_mm(H, H, nb, dm.data(), 1, ldm, zb.data(), H, c.parts.a[k].data(), H, true, false);
      add_column_sums(dm, c.parts.ba[k]);
      simd::block_mm(nb, H, H, dm.data(), ldm, 1, w_.edge_encoder.second.weight().data(), H, dp.data(), H, false,
                     false);
      dp = (zb.array() > T(0)).select(dp, T(0));
    }
    products::destination_sums(off, n0, n1, c.dpre, c.sdst, H);
  });
  c.parts.add_a(w_.edge_encoder.second.weight_grad(), &w_.edge_encoder.second.bias_grad(), H);
  products::source_sums(g, c.by_source, c.dpre, c.ssrc, H);
  c.parts.add_at_b(w_.edge_encoder.first.weight_grad().leftCols(F), c.ssrc, x);
  c.parts.add_at_b(w_.edge_encoder.first.weight_grad().middleCols(F, F), c.sdst, x);
  add_column_sums(c.sdst, w_.edge_encoder.first.bias_grad().row(0));
  const long A = o_.edge_in;
  if (A > 0) c.parts.add_at_b(w_.edge_encoder.first.weight_grad().rightCols(A), c.dpre, *attr);
  if (dattr) {
    dattr->resize(ne, A);
    dattr->noalias() = c.dpre * w_.edge_encoder.first.weight().rightCols(A);
  }

  // ---- node encoder: h0 = relu(relu(x W1^T + b1) W2^T + b2)
  c.du = (c.h[0].array() > T(0)).select(c.dh, T(0));
  c.parts.add_at_b(w_.node_encoder.second.weight_grad(), c.du, c.zx);
  add_column_sums(c.du, w_.node_encoder.second.bias_grad().row(0));
  c.dzn.noalias() = c.du * w_.node_encoder.second.weight();
  c.dzn = (c.zx.array() > T(0)).select(c.dzn, T(0));
  c.parts.add_at_b(w_.node_encoder.first.weight_grad(), c.dzn, x);
  add_column_sums(c.dzn, w_.node_encoder.first.bias_grad().row(0));
  if (dx) {
    dx->resize(n, F);
    dx->noalias() = c.dzn * w_.node_encoder.first.weight();
    dx->noalias() += c.ssrc * w_.edge_encoder.first.weight().leftCols(F);
    dx->noalias() += c.sdst * w_.edge_encoder.first.weight().middleCols(F, F);
  }
}

}  // namespace hepgnn
