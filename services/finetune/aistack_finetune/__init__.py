"""aistack offline LoRA fine-tuning: a JSONL instruction dataset -> a peft LoRA adapter."""

__version__ = "0.1.0"
