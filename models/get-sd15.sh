#!/usr/bin/env bash
# Exports real Stable Diffusion 1.5 weights to ONNX in the diffusers/Optimum layout that RenderFarm loads
# (the same layout as the generated oracle and tiny models).
#
# Needs: internet access to huggingface.co and PyPI, Python 3.9+, ~15 GB free disk (PyTorch + weights + export),
# ~16 GB RAM. A CUDA GPU is only needed for --fp16 (half-precision export must trace on the GPU).
#
# Usage: models/get-sd15.sh OUTPUT_DIR [MODEL_ID]
#   MODEL_ID defaults to stable-diffusion-v1-5/stable-diffusion-v1-5 (the maintained mirror of
#   runwayml/stable-diffusion-v1-5). Set FP16=1 for a float16 export (about half the size, GPU only).
#   Set HF_TOKEN if the model repository asks you to accept its licence first.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  sed -n '2,13p' "$0"
  exit 2
fi

out="$1"
model="${2:-stable-diffusion-v1-5/stable-diffusion-v1-5}"
venv="${VENV:-${TMPDIR:-/tmp}/renderfarm-sd-export-venv}"

command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
if [[ ! -x "$venv/bin/optimum-cli" ]]; then
  echo "Creating $venv with Optimum's ONNX exporter (PyTorch is a large download)..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --upgrade pip
  "$venv/bin/pip" install "optimum[exporters,onnxruntime]" diffusers transformers accelerate
fi

args=(export onnx --model "$model" --task text-to-image)
if [[ "${FP16:-0}" == "1" ]]; then
  args+=(--fp16 --device cuda)
fi

echo "Exporting $model to $out ..."
"$venv/bin/optimum-cli" "${args[@]}" "$out"

# Older Optimum releases call the task "stable-diffusion"; diffusers' own exporter is an alternative:
#   python scripts/convert_stable_diffusion_checkpoint_to_onnx.py --model_path "$model" --output_path "$out" [--fp16]
# (from a diffusers source checkout). Both produce text_encoder/ unet/ vae_decoder/ vae_encoder/ model.onnx,
# tokenizer/, scheduler/ and model_index.json; the UNet's weights land next to it in model.onnx_data.
echo "Done: $out (use it wherever a model directory is asked for)."
