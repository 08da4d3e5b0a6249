"""Torch modules as rnnkit's users write them: the model classes of the tutorials in shared/seeds/.

The seed classes are copied in their authors' style (``nn.LogSoftmax()`` without ``dim``,
``super(Model, self).__init__()``, globals read inside ``forward``); where the copy could not run
as written, a comment says what was changed. After them: the same shapes with a GRU or an LSTM,
language models and a tagger, and the shapes rnnkit refuses (each with the layer it names).
"""

# ruff: noqa: UP008 (the tutorials' own super(Model, self).__init__(), kept as written)

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable

# -- seed 004: 单隐藏层纯结构版本 (the hand-written recurrence: rnnkit refuses it) ----------------


class RNN(nn.Module):
    # fixed: `def __init__(...)：` ended in a full-width colon, a SyntaxError
    def __init__(self,input_size,hidden_size,output_size):
        super(RNN,self).__init__()
        self.hidden_size = hidden_size
        # 一个embedding层
        self.embed = nn.Embedding(input_size,hidden_size)
        # 隐含层内相互连接,因为它需要输入上一层值和自身一层值
        self.i2h = nn.Linear(2*hidden_size,hidden_size)
        # 隐含层到输出层的连接
        self.h2o = nn.Linear(hidden_size,hidden_size)
        # 最后一层softmax
        self.softmax = nn.LogSoftmax()

    def forward(self,input,hidden):
        # 先进行embedding层的计算
        x = self.embed(input)
        # 将输入和隐含层的输出耦合在一起（拼成一个长向量）
        combined = torch.cat((x,hidden),1)
        # 把这个长向量喂给隐含层
        hidden = self.i2h(combined)
        # 从隐含层到输出层的运算
        output = self.h2o(hidden)
        # 最后经过softmax激活
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        # 对隐含单元的初始化
        # 注意尺寸是：batch_size, hidden_size
        # fixed: torch.zero (no such function) → torch.zeros
        return Variable(torch.zeros(1,self.hidden_size))


# -- seed 004: 多隐藏层并调用nn封装版本 (a last-step classifier) -----------------------------------


class my_RNN(nn.Module):
    def __init__(self,input_size,hidden_size,output_size,num_layers = 1):
        # 定义
        super(my_RNN,self).__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        # 一个embedding层
        self.embedding = nn.Embedding(input_size,hidden_size)
        # pytorch的RNN层，注意它接受的是三维张量
        self.rnn = nn.RNN(hidden_size,hidden_size,num_layers,batch_first=True)
        # 输出全连接层
        self.fc = nn.Linear(hidden_size,output_size)
        # 最后的logsoftmax层
        self.softmax = nn.LogSoftmax()

    def forward(self,input,hidden):
        # 运算过程
        # 先进行嵌入，把数值转化为onehot向量，再把这个向量转化为嵌入向量
        x = self.embedding(input)
        # 从输入层到隐含层的计算
        # 注意x的尺寸为batch_size,len_of_seq,hidden_size
        output, hidden = self.rnn(x,hidden)
        # 从output中取出最后一个时间步的数值（因为output中包含了所有的时间步的结果）
        output = output[:,-1,:]
        # 此时得到的output层尺寸为二维：batch_size,hidden_size
        # 最后再接全连接层
        output = self.fc(output)
        # 最后再接一层softmax
        output = self.softmax(output)

        return output,hidden


# -- seed 000/001 (PyTorch深度学习实践): hello → ohlol ----------------------------------------------
# The course's settings, read as globals by the Embedding model's forward as the course wrote it.
idx2char = ['e', 'h', 'l', 'o']
x_data = [1, 0, 2, 2, 3]  # hello
y_data = [3, 1, 2, 3, 2]  # ohlol
num_class = 4
input_size = 4
hidden_size = 8
embedding_size = 10
num_layers = 2
batch_size = 1
seq_len = 5


class Model(torch.nn.Module):
    """One-hot (seq, batch, 4) in; the RNN's hidden state (4 wide) is the output, one row per step."""

    def __init__(self, input_size, hidden_size, batch_size, num_layers=1):
        super(Model, self).__init__()
        self.num_layers = num_layers
        self.batch_size = batch_size
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.rnn = torch.nn.RNN(input_size=self.input_size,
                                hidden_size=self.hidden_size,
                                num_layers=num_layers)

    def forward(self, input):
        hidden = torch.zeros(self.num_layers,
                             self.batch_size,
                             self.hidden_size)
        out, _ = self.rnn(input, hidden)
        return out.view(-1, self.hidden_size)


class EmbeddingModel(torch.nn.Module):
    """The course's second ``Model`` (renamed: both are ``Model`` there): ids (batch, seq) in."""

    def __init__(self):
        super(EmbeddingModel, self).__init__()
        self.emb = torch.nn.Embedding(input_size, embedding_size)
        self.rnn = torch.nn.RNN(input_size=embedding_size,
                                hidden_size=hidden_size,
                                num_layers=num_layers,
                                batch_first=True)
        self.fc = torch.nn.Linear(hidden_size, num_class)

    def forward(self, x):
        hidden = torch.zeros(num_layers, x.size(0), hidden_size)
        x = self.emb(x)  # (batch, seqLen, embeddingSize)
        x, _ = self.rnn(x, hidden)
        x = self.fc(x)
        return x.view(-1, num_class)


class CellModel(torch.nn.Module):
    """The course's ``RNNCell`` model (renamed): one step a call, the loop is the training code's."""

    def __init__(self, input_size, hidden_size, batch_size):
        super(CellModel, self).__init__()
        self.batch_size = batch_size
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.rnncell = torch.nn.RNNCell(input_size=self.input_size,
                                        hidden_size=self.hidden_size)

    def forward(self, input, hidden):
        hidden = self.rnncell(input, hidden)
        return hidden

    def init_hidden(self):
        return torch.zeros(self.batch_size, self.hidden_size)


# -- seeds 001–003: a cell stepped by a loop; nn.RNN/GRU/LSTM called as out, h = rnn(x, h0) --------


class CellLoop(nn.Module):
    """Seed 003's ``for xt in x: h1 = cell(xt, h1)`` inside forward, for any of the three cells."""

    def __init__(self, cell, input_size, hidden_size):
        super().__init__()
        self.cell = getattr(nn, cell)(input_size, hidden_size)
        self.hidden_size = hidden_size

    def forward(self, x):
        h1 = torch.zeros(x.size(1), self.hidden_size)
        state = (h1, torch.zeros_like(h1)) if isinstance(self.cell, nn.LSTMCell) else h1
        outs = []
        for xt in x:
            state = self.cell(xt, state)
            outs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outs)


class SeqFirst(nn.Module):
    """Embedding → nn.RNN/GRU/LSTM (seq, batch) with num_layers=2 → Linear; ``out, h = rnn(x, h0)``."""

    def __init__(self, cell, vocab_size, embed, hidden, n_out, num_layers=2, **rnn_options):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = getattr(nn, cell)(input_size=embed, hidden_size=hidden, num_layers=num_layers, **rnn_options)
        self.fc = nn.Linear(hidden, n_out)

    def forward(self, x, h0):
        out, h = self.rnn(self.embed(x), h0)  # out (seq, batch, hidden)
        return self.fc(out), h


class Classifier(nn.Module):
    """my_RNN's shape with an nn.GRU or nn.LSTM, called without a hidden state (zeros)."""

    def __init__(self, rnn_type, vocab_size, hidden_size, output_size, num_layers=1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.rnn = getattr(nn, rnn_type)(hidden_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input):
        output, _ = self.rnn(self.embedding(input))  # (batch, seq, hidden)
        return self.softmax(self.fc(output[:, -1, :]))


class CharLM(nn.Module):
    """A char lm, Embedding → LSTM → Linear over every step: logits (batch, seq, vocab)."""

    def __init__(self, vocab_size, embed, hidden, cell="LSTM", num_layers=1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.rnn = getattr(nn, cell)(embed, hidden, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x, hidden=None):
        output, hidden = self.rnn(self.embedding(x), hidden)
        return self.fc(output), hidden


class WordLanguageModel(nn.Module):
    """pytorch/examples word_language_model: (seq, batch) in, log-probabilities (seq·batch, ntoken) out."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.ntoken = ntoken

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden


class Tagger(nn.Module):
    """A per-char tagger (B/M/E/S): Embedding → GRU → Linear, logits (batch, seq, tags)."""

    def __init__(self, vocab_size, embed, hidden, n_tags):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.hidden2tag = nn.Linear(hidden, n_tags)

    def forward(self, sentence):
        out, _ = self.gru(self.embedding(sentence))
        return self.hidden2tag(out)


class NoBias(nn.Module):
    """Every layer ``bias=False``, two recurrent layers: rnnkit's copy holds equal zero biases."""

    def __init__(self, cell, vocab_size, embed, hidden, n_out):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.rnn = getattr(nn, cell)(embed, hidden, 2, bias=False, batch_first=True)
        self.fc = nn.Linear(hidden, n_out, bias=False)

    def forward(self, x):
        return self.fc(self.rnn(self.embedding(x))[0])


def seed002_vocab(text):
    """Seed 002's word vocabulary of ``text``, built as it builds it (jieba words, ``list(set(words))``)."""
    import jieba

    words = jieba.lcut(text)
    index_to_word = {}
    word_to_index = {}
    unique_words = list(set(words))  # 去重

    for i, word in enumerate(unique_words):
        index_to_word[i] = word
        word_to_index[word] = i
    return words, word_to_index


# -- shapes rnnkit refuses -------------------------------------------------------------------------


class Bidirectional(Classifier):
    def __init__(self):
        super().__init__("GRU", 10, 8, 2)
        self.rnn = nn.GRU(8, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 2)


class TwoRNNs(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.encoder = nn.GRU(8, 8, batch_first=True)
        self.decoder = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x):
        return self.decoder(self.encoder(self.embedding(x))[0])[0]


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.rnn = nn.GRU(8, 8, batch_first=True)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.rnn(self.embedding(x))
        out, _ = self.attn(out, out, out)
        return self.fc(out[:, -1])


class NoRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.embedding(x).mean(1))


class MLPHead(Classifier):
    """Two Linear layers with a ReLU between them after the RNN."""

    def __init__(self):
        super().__init__("GRU", 10, 8, 2)
        self.fc = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


class Normed(Classifier):
    def __init__(self):
        super().__init__("LSTM", 10, 8, 2)
        self.norm = nn.LayerNorm(8)

    def forward(self, input):
        output, _ = self.rnn(self.embedding(input))
        return self.fc(self.norm(output[:, -1]))


class LearnedStart(Classifier):
    """A learned initial state: an nn.Parameter outside every layer."""

    def __init__(self):
        super().__init__("GRU", 10, 8, 2)
        self.h0 = nn.Parameter(torch.zeros(1, 1, 8))

    def forward(self, input):
        h0 = self.h0.expand(1, input.size(0), 8).contiguous()
        output, _ = self.rnn(self.embedding(input), h0)
        return self.fc(output[:, -1])


class Projected(Classifier):
    def __init__(self):
        super().__init__("LSTM", 10, 8, 2)
        self.rnn = nn.LSTM(8, 8, batch_first=True, proj_size=4)
        self.fc = nn.Linear(4, 2)


class WideEmbedding(Classifier):
    """An embedding of 6 feeding an RNN that reads 8."""

    def __init__(self):
        super().__init__("GRU", 10, 8, 2)
        self.embedding = nn.Embedding(10, 6)


class WideHead(Classifier):
    """A head that reads 12 values from an RNN that gives 8."""

    def __init__(self):
        super().__init__("GRU", 10, 8, 2)
        self.fc = nn.Linear(12, 2)


class ReluBetween(Classifier):
    """F.relu between the RNN and the head, called functionally: no module shows it."""

    def __init__(self):
        super().__init__("GRU", 10, 8, 2)

    def forward(self, input):
        output, _ = self.rnn(self.embedding(input))
        return self.fc(F.relu(output[:, -1]))


class ReturnsDict(Classifier):
    def __init__(self):
        super().__init__("GRU", 10, 8, 2)

    def forward(self, input):
        return {"logits": super().forward(input)}
