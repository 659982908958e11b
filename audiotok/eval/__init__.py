"""Evaluation metrics (SI-SDR, mel and STFT distances, STOI/PESQ, code usage) and reports."""
