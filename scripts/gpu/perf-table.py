#!/usr/bin/env python3
"""Markdown tables for docs/PERFORMANCE.md from one GPU call's outputs:
   python3 scripts/gpu/perf-table.py bench.json torch.json [ort.json]"""
import json, sys

bench = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2]))
ort = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
copy = bench['copyGBps']
tcopy = torch.get('copyGBps')
print(f"Device: {bench['device']}; our copy probe {copy:.0f} GB/s; PyTorch copy {tcopy:.0f} GB/s; date {bench.get('date')}\n")
best = {}
for r in torch['results']:
    if r.get('medianMs') is None:
        continue
    key = (r['model'], r['tokens'])
    if key not in best or r['medianMs'] < best[key]['medianMs']:
        best[key] = r
print('| model | T | dtype | ours ms (p10-p90) | ours GB/s | % of our copy | % of torch copy | TFLOP/s | wall ms/forward | HF fastest (impl) ms | speed-up |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
for r in bench['results']:
    if r.get('impl', 'moe') != 'moe':
        continue
    if r.get('medianMs') is None or r.get('error'):
        print(f"| {r['model']} | {r['tokens']} | {r['dtype']} | failed: {str(r.get('error',''))[:80]} | | | | | | | |")
        continue
    b = best.get((r['model'].split('/e')[0], r['tokens']))
    hf = f"{b['medianMs']:.3f} ({b['impl']})" if b else '-'
    sp = f"{b['medianMs'] / r['medianMs']:.2f}x" if b else '-'
    print(f"| {r['model']} | {r['tokens']} | {r['dtype']} | {r['medianMs']:.3f} ({r['p10Ms']:.3f}-{r['p90Ms']:.3f}) | {r['gbps']:.0f} | {100 * r['gbps'] / copy:.0f}% | {100 * r['gbps'] / tcopy:.0f}% | {r['tflops']:.1f} | {r.get('wallMs', float('nan')):.2f} | {hf} | {sp} |")
if ort:
    print('\n| model | T | ORT WebGPU QMoE int4 ms | ours int4 ms | ours / ORT speed-up |')
    print('|---|---|---|---|---|')
    ours = {(r['model'], r['tokens']): r for r in bench['results'] if r.get('dtype') == 'int4' and r.get('impl', 'moe') == 'moe' and 'medianMs' in r}
    for r in ort['results']:
        if r.get('impl') == 'moe' or 'medianMs' not in r:
            continue
        o = ours.get((r['model'], r['tokens']))
        print(f"| {r['model']} | {r['tokens']} | {r['medianMs']:.3f} | {o['medianMs']:.3f} | {r['medianMs'] / o['medianMs']:.1f}x |" if o else f"| {r['model']} | {r['tokens']} | {r['medianMs']:.3f} | - | - |")
