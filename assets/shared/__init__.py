"""What the stage modules share: resources, partitions, pools, the automation condition, metadata helpers."""
