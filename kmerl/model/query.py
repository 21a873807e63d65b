"""The cardiac query network (method section 5): entity names ask the ECG tokens.

Each query is a text embedding (an entity name, or at evaluation any class name)
projected to the encoder width; cross-attention blocks let it read the ECG tokens
and a shared head gives one logit per query. *ours*: the queries do not attend to
each other, so a query's logit does not depend on which other queries are asked,
and any text can be asked zero-shot.
"""

from __future__ import annotations

from torch import Tensor, nn


class QueryBlock(nn.Module):
    """Pre-norm cross-attention from queries to tokens, then a feed-forward layer."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.query_norm = nn.LayerNorm(width)
        self.token_norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, queries: Tensor, tokens: Tensor, padding: Tensor) -> Tensor:
        context = self.token_norm(tokens)
        attended, _ = self.attention(
            self.query_norm(queries),
            context,
            context,
            key_padding_mask=padding if bool(padding.any()) else None,
            need_weights=False,
        )
        queries = queries + attended
        return queries + self.mlp(self.mlp_norm(queries))


class CardiacQueryNetwork(nn.Module):
    def __init__(self, text_dim: int, width: int, heads: int, layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.query_projection = nn.Linear(text_dim, width)
        self.blocks = nn.ModuleList(QueryBlock(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, tokens: Tensor, padding: Tensor, query_text: Tensor) -> Tensor:
        """(batch, queries) logits for ``query_text`` (queries, text_dim) over each ECG's tokens."""
        queries = self.query_projection(query_text.to(tokens.dtype)).expand(tokens.shape[0], -1, -1)
        for block in self.blocks:
            queries = block(queries, tokens, padding)
        return self.head(self.norm(queries)).squeeze(-1)
