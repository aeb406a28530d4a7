"""Network safety shared by downloads and provider clients: address policy, pinned connections, capped bodies."""
