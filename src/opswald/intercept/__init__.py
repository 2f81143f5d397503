"""Zero-code interception of LLM SDK HTTP traffic: transport hook and per-API codecs."""
