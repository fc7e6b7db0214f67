"""Stage 2, layers: the network's reusable Keras layers (each `get_config`-serialisable).

`ItemTable` (the output table Wy, by: scores items and, shared, embeds them), `ItemEmbedding`
(a separate input table), `ItemFeatureEmbedding` (an item's feature part, added to either
table's id part), `GRUCell` and `GRUStack` (the recurrent part).
"""

from tf_gru4rec.layers.gru import GRUCell, GRUStack
from tf_gru4rec.layers.item_features import ItemFeatureEmbedding, value_matrix
from tf_gru4rec.layers.item_table import ItemEmbedding, ItemTable

__all__ = ["GRUCell", "GRUStack", "ItemEmbedding", "ItemFeatureEmbedding", "ItemTable", "value_matrix"]
