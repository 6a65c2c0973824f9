"""The main job (``sparseattn run``, ``make run``): from a real model to simulated accelerators, in one report.

Its steps, in order (:data:`sparseattn.job.steps.STEPS`, one module each under :mod:`sparseattn.job.steps`; every
finished unit is saved to ``results.json`` at once, atomically, as a typed row of :mod:`sparseattn.report.rows`, so
an interrupted run resumes):

1. **accuracy** -- the decoder (SmolLM2 by default) on a text window with every method in every layer at its
   default setting: perplexity, density (overall and per layer), attention fidelity on a few layers (kept softmax
   mass, output error), each method beside the top-k oracle at its own density; the method's trace of every layer
   is kept for step 3;
2. **encoder** -- the bundled encoder (all-MiniLM-L6-v2, a BERT) with every method: embedding cosine to dense and
   retrieval agreement (the papers' BERT rows are bidirectional), and its traces;
3. **hardware** -- each method's captured traces simulated on its own accelerator and, for reference, dense
   attention on the A100 and H100 models, at the papers' workload shapes (decoder traces on Llama2-7B, encoder
   traces on BERT-Large; the scaling from the captured shape is stated);
4. **reproduce** -- the papers' headline claims, paper vs ours (:mod:`sparseattn.report.reproduce`);
5. **spatial** -- Spatial-STAR throughput vs sequence length against its baselines;
6. **dse** -- a Bayesian search of STAR's cross-stage tiling on the decoder shape (latency and DRAM traffic);
7. **kernels** -- with ``device="cuda"``: the Triton kernel against PyTorch SDPA; on a CPU, recorded as not run;
8. **calibration** -- equal accuracy: each method's density knob calibrated to +1% and +2% perplexity on
   ``calib_text`` and judged on ``text``, its accelerator simulated there, beside the oracles at the same budget
   (:mod:`sparseattn.job.steps.calibration`).

Then figures, CSV tables and a self-contained ``report.html`` (:mod:`sparseattn.report`, which reads the typed rows
and knows nothing of the job). The configuration is :class:`~sparseattn.job.config.RunConfig` (CLI options or a
``run.yaml`` with the same keys); every bad option is refused before any long work starts, and nothing is written
outside the output directory. The runner is :mod:`sparseattn.job.runner`.
"""
