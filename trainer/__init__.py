"""Continual LoRA SFT on accepted samples, versioned adapters, and their evaluation."""
