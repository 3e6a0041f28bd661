# PyTorch/HF baselines for the MoE layer forward on the lent GPU, in the
# JSON schema of the WebMoE bench (apps/bench/src/schema.ts), so that
#   node .gpu-kit/bench.mjs --compare torch.json
# puts these numbers beside ours. Extended from /work/shared/gpu/torch_baseline.py.
#
#   python3 torch_baseline.py OUT.json [--models a,b] [--tokens 1,16] [--impls eager,grouped_mm,batched_mm] [--iters 20] [--stack 48] [--stack-gib 60]
#
# Each row: median / p10 / p90 / min / max of CUDA-event times of one block
# forward (bf16); wallGpuMs: the wall time per block call of a chain of
# --stack calls with GPU-resident activations (each output the next input,
# cycling over stackLayers distinct blocks, as many as --stack-gib allows),
# synchronized once at the end, median of 5 chains after a warm-up chain
# (the bench's wallGpuMs; after /work/shared/gpu/torch_wall.py); GB/s and
# TFLOP/s on the same bytes and flops formulas as
# the bench (weights of the expected distinct experts for uniform routing +
# shared experts + router, activations x and y in bf16), impl = the
# transformers experts implementation.
import argparse, datetime, importlib, json, math, statistics, sys, time
import torch
import transformers
from transformers import AutoConfig

torch.backends.cuda.matmul.allow_tf32 = True
dev = 'cuda'

# name: (model_type, block class, config kwargs, H, I, E, k, shared experts)
SHAPES = {
 'mixtral-8x7b':     ('mixtral',  'MixtralSparseMoeBlock',  dict(hidden_size=4096, intermediate_size=14336, num_local_experts=8, num_experts_per_tok=2), 4096, 14336, 8, 2, 0),
 'qwen3-30b-a3b':    ('qwen3_moe', 'Qwen3MoeSparseMoeBlock', dict(hidden_size=2048, moe_intermediate_size=768, num_experts=128, num_experts_per_tok=8, norm_topk_prob=True), 2048, 768, 128, 8, 0),
 'gpt-oss-20b':      ('gpt_oss', 'GptOssMLP', dict(hidden_size=2880, intermediate_size=2880, num_local_experts=32, num_experts_per_tok=4), 2880, 2880, 32, 4, 0),
 'deepseek-v2-lite': ('deepseek_v3', 'DeepseekV3MoE', dict(hidden_size=2048, moe_intermediate_size=1408, n_routed_experts=64, num_experts_per_tok=6, n_group=1, topk_group=1, n_shared_experts=2, norm_topk_prob=False, routed_scaling_factor=1.0), 2048, 1408, 64, 6, 2),
 'deepseek-v3':      ('deepseek_v3', 'DeepseekV3MoE', dict(hidden_size=7168, moe_intermediate_size=2048, n_routed_experts=256, num_experts_per_tok=8, n_group=8, topk_group=4, n_shared_experts=1, norm_topk_prob=True, routed_scaling_factor=2.5), 7168, 2048, 256, 8, 1),
 # the bench's 32-expert stand-in for DeepSeek-V3 (its default decode rows): the same layer with E = 32 (8 groups of 4)
 'deepseek-v3/e32':  ('deepseek_v3', 'DeepseekV3MoE', dict(hidden_size=7168, moe_intermediate_size=2048, n_routed_experts=32, num_experts_per_tok=8, n_group=8, topk_group=4, n_shared_experts=1, norm_topk_prob=True, routed_scaling_factor=2.5), 7168, 2048, 32, 8, 1),
 'kimi-k2':          ('deepseek_v3', 'DeepseekV3MoE', dict(hidden_size=7168, moe_intermediate_size=2048, n_routed_experts=384, num_experts_per_tok=8, n_group=1, topk_group=1, n_shared_experts=1, norm_topk_prob=True, routed_scaling_factor=2.827), 7168, 2048, 384, 8, 1),
 # module llama4, config model type llama4_text (the 9th field)
 'llama4-maverick':  ('llama4', 'Llama4TextMoe', dict(hidden_size=5120, intermediate_size=8192, intermediate_size_mlp=16384, num_local_experts=128, num_experts_per_tok=1), 5120, 8192, 128, 1, 1, 'llama4_text'),
 # the bench's rows of the model types added in session 20 (on request, as in apps/bench/src/models.ts)
 'glm-4.5-air':      ('glm4_moe', 'Glm4MoeMoE', dict(hidden_size=4096, moe_intermediate_size=1408, n_routed_experts=128, num_experts_per_tok=8, n_group=1, topk_group=1, n_shared_experts=1, norm_topk_prob=True, routed_scaling_factor=1.0), 4096, 1408, 128, 8, 1),
 'minimax-m2':       ('minimax_m2', 'MiniMaxM2SparseMoeBlock', dict(hidden_size=3072, intermediate_size=1536, num_local_experts=256, num_experts_per_tok=8, scoring_func='sigmoid', use_routing_bias=True, head_dim=128), 3072, 1536, 256, 8, 0),
 'ernie-4.5-21b-a3b': ('ernie4_5_moe', 'Ernie4_5_MoeSparseMoeBlock', dict(hidden_size=2560, moe_intermediate_size=1536, moe_num_experts=64, moe_k=6, moe_num_shared_experts=2, use_bias=False), 2560, 1536, 64, 6, 2),
 'deepseek-v2':      ('deepseek_v2', 'DeepseekV2Moe', dict(hidden_size=5120, moe_intermediate_size=1536, n_routed_experts=160, num_experts_per_tok=6, n_shared_experts=2, topk_method='group_limited_greedy', n_group=8, topk_group=3, routed_scaling_factor=16.0, norm_topk_prob=False), 5120, 1536, 160, 6, 2),
}
# the bench's full run (kimi-k2 and llama4-maverick, 34 and 32 GB in bf16, on request: --models kimi-k2,llama4-maverick)
DEFAULT_MODELS = ['mixtral-8x7b', 'qwen3-30b-a3b', 'gpt-oss-20b', 'deepseek-v2-lite', 'deepseek-v3']

def make_block(mod, cls, cfg):
    """One MoE block with N(0, 0.02) weights, made on the GPU directly in bf16: no f32 copy first, so that the
    full-size layers (DeepSeek-V3 22.5 GB, Kimi-K2 34 GB, Llama-4-Maverick 32 GB in bf16) never need twice their size."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(dev), torch.no_grad():
            block = getattr(mod, cls)(cfg).eval()
            for p in block.parameters(): p.data.normal_(0, 0.02)
    finally:
        torch.set_default_dtype(prev)
    return block

def quantile(xs, q):
    s = sorted(xs); pos = q * (len(s) - 1); lo = math.floor(pos); hi = math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)

def bench(fn, iters, warmup=3, warmup_ms=300):
    # at least `warmup` calls and `warmup_ms` of wall time, back to back (drained every 8): an idle GPU lowers its
    # clocks and raises them only under a full queue (the same rule as the WebMoE bench)
    t0 = time.perf_counter(); n = 0
    while n < warmup or (time.perf_counter() - t0) * 1e3 < warmup_ms:
        fn(); n += 1
        if n % 8 == 0: torch.cuda.synchronize()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); torch.cuda.synchronize(); ts.append(a.elapsed_time(b))
    return ts

def chain_wall(blocks, x0, n, chains=5):
    """Wall ms per block call of a chain of n calls (cycling over blocks), GPU-resident activations, one sync at the end; median of `chains` after a warm-up chain."""
    f = lambda b, v: (lambda o: o[0] if isinstance(o, tuple) else o)(b(v))
    walls = []
    with torch.no_grad():
        for c in range(chains + 1):
            torch.cuda.synchronize(); t0 = time.perf_counter(); x = x0
            for i in range(n): x = f(blocks[i % len(blocks)], x)
            torch.cuda.synchronize()
            if c: walls.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(walls)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out', nargs='?', default='/tmp/torch_baseline.json')
    ap.add_argument('--models', default=','.join(DEFAULT_MODELS), help='any of ' + ', '.join(SHAPES))
    ap.add_argument('--tokens', default='1,16,128,512,4096')
    ap.add_argument('--impls', default='eager,grouped_mm,batched_mm')
    ap.add_argument('--iters', type=int, default=20)
    ap.add_argument('--stack', type=int, default=48, help='block calls per chain of the wallGpuMs column')
    ap.add_argument('--stack-gib', type=float, default=60, help='GPU memory the distinct blocks of the chain may take')
    a = ap.parse_args()
    name = torch.cuda.get_device_name()
    print('torch', torch.__version__, 'transformers', transformers.__version__, name, flush=True)
    x = torch.empty(1 << 30, dtype=torch.uint8, device=dev); y = torch.empty_like(x)
    copy_ms = statistics.median(bench(lambda: y.copy_(x), 20))
    copy = 2 * (1 << 30) / copy_ms / 1e6
    print(f'copy {copy:.0f} GB/s', flush=True)
    del x, y
    rows = []
    for mname in a.models.split(','):
        mt, cls, kw, H, I, E, k, S = SHAPES[mname][:8]
        cfg_type = SHAPES[mname][8] if len(SHAPES[mname]) > 8 else mt
        mod = importlib.import_module(f'transformers.models.{mt}.modeling_{mt}')
        cfg = AutoConfig.for_model(cfg_type, **kw, num_attention_heads=16, num_key_value_heads=4, vocab_size=1024)
        for impl in a.impls.split(','):
            def fail(T, msg):
                rows.append(dict(model=mname, tokens=T, dtype='bf16', device=name, impl=impl, medianMs=None, p10Ms=None, p90Ms=None, gbps=None, tflops=None, kernels=[], error=msg[:300]))
            try:
                cfg._experts_implementation = impl
                block = make_block(mod, cls, cfg)
                # the chain's distinct blocks: as many as the memory budget allows, at most --stack
                nbytes_block = sum(p.numel() * p.element_size() for p in block.parameters())
                blocks = [block]
                while len(blocks) < min(a.stack, max(1, int(a.stack_gib * 2**30 // nbytes_block))):
                    try:
                        b = make_block(mod, cls, cfg)
                    except torch.cuda.OutOfMemoryError:
                        torch.cuda.empty_cache(); break  # as many as fit
                    blocks.append(b)
            except Exception as e:
                print(mname, impl, 'build failed', repr(e)[:200], flush=True)
                for T in map(int, a.tokens.split(',')): fail(T, 'build failed: ' + repr(e))
                continue
            for T in map(int, a.tokens.split(',')):
                xx = torch.randn(1, T, H, device=dev, dtype=torch.bfloat16)
                try:
                    with torch.no_grad(): ts = bench(lambda: block(xx), a.iters)
                except Exception as e:
                    print(mname, impl, T, 'failed', repr(e)[:200], flush=True)
                    fail(T, repr(e)); torch.cuda.empty_cache(); continue
                try:
                    wall = chain_wall(blocks, xx, a.stack)
                except Exception as e:
                    print(mname, impl, T, 'chain failed', repr(e)[:200], flush=True)
                    wall = None
                ms = statistics.median(ts)
                hit = E * (1 - (1 - k / E) ** T)
                wbytes = (hit + S) * 3 * H * I * 2 + E * H * 2
                nbytes = wbytes + 2 * T * H * 2
                flops = 2 * T * k * 3 * H * I + 2 * T * H * E + 2 * T * 3 * H * S * I
                r = dict(model=mname, tokens=T, dtype='bf16', device=name, impl=impl, medianMs=ms,
                         p10Ms=quantile(ts, 0.1), p90Ms=quantile(ts, 0.9), minMs=min(ts), maxMs=max(ts), timing='cuda-event',
                         gbps=nbytes / ms / 1e6, tflops=flops / ms / 1e9, copyRatio=nbytes / ms / 1e6 / copy,
                         bytes=nbytes, weightBytes=wbytes, flops=flops, intensity=flops / nbytes,
                         expertsHit=hit, expertsHitSource='expected-uniform', floorMs=nbytes / copy / 1e6, kernels=[],
                         wallGpuMs=wall, stack=a.stack, stackLayers=len(blocks))
                rows.append(r)
                print(f'{mname:18s} {impl:10s} T={T:5d} {ms:9.3f} ms  {r["gbps"]:7.0f} GB/s  {r["tflops"]:7.1f} TFLOP/s  chain wall {wall if wall is None else round(wall, 4)} ms/call over {len(blocks)} blocks', flush=True)
            del block, blocks; torch.cuda.empty_cache()
    rep = dict(schema='webmoe-bench/1', device=name, deviceKind='cuda', copyGBps=copy, label='torch',
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(), results=rows)
    with open(a.out, 'w') as f: json.dump(rep, f, indent=1)
    print('wrote', a.out)

if __name__ == '__main__':
    main()
